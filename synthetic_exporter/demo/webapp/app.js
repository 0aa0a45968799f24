/* Synthetic Widgets storefront: marks the page ready once the DOM is parsed. */
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  document.body.dataset.ready = "1";
});
