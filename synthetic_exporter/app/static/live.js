// Live updates: refetch the page's main region every 5 s and swap it in, without a reload.
// Paused while the tab is hidden; the page works without this script.
"use strict";
(function () {
  const main = document.getElementById("live");
  const state = document.getElementById("live-state");
  if (!main || !main.dataset.live) {
    return;
  }
  const url = main.dataset.live;
  const everyMs = 5000;
  let timer = null;
  let busy = false;

  function say(text) {
    if (state) {
      state.textContent = text;
    }
  }

  async function refresh() {
    if (busy || document.hidden) {
      return;
    }
    busy = true;
    try {
      const response = await fetch(url, { cache: "no-store", credentials: "same-origin" });
      if (!response.ok) {
        say("Live update failed (HTTP " + response.status + "): retrying.");
        return;
      }
      const html = await response.text();
      const open = Array.from(main.querySelectorAll("details[open][id]"), (d) => d.id);
      main.innerHTML = html;
      for (const id of open) {
        const details = document.getElementById(id);
        if (details) {
          details.open = true;
        }
      }
      const root = main.querySelector(".live-root");
      if (root && root.dataset.title) {
        document.title = root.dataset.title;
      }
      main.dataset.refreshed = String(Date.now());
      say("");
    } catch (error) {
      say("Live update failed (agent unreachable): retrying.");
    } finally {
      busy = false;
    }
  }

  function schedule() {
    if (timer !== null) {
      clearInterval(timer);
      timer = null;
    }
    if (!document.hidden) {
      timer = setInterval(refresh, everyMs);
    }
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) {
      refresh();
    }
    schedule();
  });
  schedule();
})();
