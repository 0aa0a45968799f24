/* The dashboard: the signed-in customer and their invoices, from the demo API.
 *
 * The session ({token, customer_id}) is read from sessionStorage["demo-session"], where the
 * sign-in form (or a synthetic check) puts it. The API is the page's own origin.
 */
"use strict";

function show(testId, text) {
  document.querySelector(`[data-testid="${testId}"]`).textContent = text;
}

async function getJson(path, token) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const response = await fetch(path, { headers });
  if (!response.ok) {
    throw new Error(`${path}: HTTP ${response.status}`);
  }
  return response.json();
}

async function load() {
  getJson("/health")
    .then((health) => show("api-status", `API ${health.status}`))
    .catch((error) => show("api-status", `API unreachable (${error.message})`));
  const session = JSON.parse(sessionStorage.getItem("demo-session") || "null");
  if (!session) {
    show("welcome", "Signed out");
    show("invoices", "Sign in to see your invoices.");
    return;
  }
  try {
    const [customer, invoices] = await Promise.all([
      getJson(`/customers/${encodeURIComponent(session.customer_id)}`, session.token),
      getJson("/invoices", session.token),
    ]);
    show("welcome", `Welcome, ${customer.name}`);
    const count = invoices.items.length;
    show("invoices", `${count} invoice${count === 1 ? "" : "s"}`);
  } catch (error) {
    show("welcome", "Could not load your account");
    show("invoices", error.message);
  }
}

load();
