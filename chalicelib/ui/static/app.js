// Entry point: sign-in (a key typed in, or the one-time code of `slipstream dev`'s
// link) and a hash router. The key lives in sessionStorage only, never in a URL.

import { api, session } from "./api.js";
import { h, mount, errorBox } from "./dom.js";
import { dagsView } from "./dags.js";
import { gridView } from "./grid.js";
import { graphView } from "./graph.js";
import { runView } from "./run.js";
import { triggerView } from "./trigger.js";
import { backfillView } from "./backfill.js";
import { versionsView } from "./versions.js";
import { adminView } from "./admin.js";
import { hitlView } from "./hitl.js";

let stopView = null;

const ROUTES = [
  [/^#\/dags(?:\?.*)?$/, () => dagsView()],
  [/^#\/admin$/, () => adminView()],
  [/^#\/hitl$/, () => hitlView()],
  [/^#\/dags\/([^/]+)\/grid(?:\?.*)?$/, (m) => gridView(decodeURIComponent(m[1]))],
  [/^#\/dags\/([^/]+)\/graph(?:\?run=([^&]*))?$/, (m) => graphView(decodeURIComponent(m[1]), m[2] ? decodeURIComponent(m[2]) : null)],
  [/^#\/dags\/([^/]+)\/trigger(?:\?.*)?$/, (m) => triggerView(decodeURIComponent(m[1]))],
  [/^#\/dags\/([^/]+)\/backfill(?:\?.*)?$/, (m) => backfillView(decodeURIComponent(m[1]))],
  [/^#\/dags\/([^/]+)\/versions(?:\?.*)?$/, (m) => versionsView(decodeURIComponent(m[1]))],
  [/^#\/dags\/([^/]+)\/runs\/([^/?]+)(?:\?.*)?$/, (m) => runView(decodeURIComponent(m[1]), decodeURIComponent(m[2]))],
];

function showWho() {
  const who = session.who;
  document.getElementById("who").textContent = who ? `${who.tenant} · ${who.role}` : "";
  document.getElementById("signout").hidden = !who;
}

function signInForm(message) {
  const input = h("input", { id: "api-key", type: "password", autocomplete: "off", required: true, size: 60 });
  const status = h("p", { id: "signin-status", role: "alert" }, message || "");
  const form = h("form", { class: "card signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in"),
    h("p", {}, "Paste an API key (from ", h("code", {}, "slipstream keys create"), ", or the key ",
      h("code", {}, "slipstream dev"), " prints). It is kept in this tab's session storage only."),
    h("label", { for: "api-key" }, "API key"), input,
    h("button", { type: "submit" }, "Sign in"), status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const { data } = await api.whoami(input.value.trim());
      session.save(input.value.trim(), data);
      location.hash = "#/dags";
      route();
    } catch (e) {
      status.textContent = e.status === 401 ? "That key is not valid (unknown, expired or revoked)." : e.message;
    }
  });
  mount(form);
  input.focus();
}

async function signInWithCode(code) {
  // Drop the code from the address bar and history before anything else.
  history.replaceState(null, "", location.pathname + "#/dags");
  try {
    const { data } = await api.exchange(code);
    session.save(data.api_key, { tenant: data.tenant, role: data.role, key_id: data.key_id });
  } catch (e) {
    signInForm(`The sign-in link did not work: ${e.message}. Paste a key instead.`);
    return false;
  }
  return true;
}

async function route() {
  if (stopView) { stopView(); stopView = null; }
  showWho();
  if (!session.key) return signInForm();
  const hash = location.hash || "#/dags";
  for (const [pattern, view] of ROUTES) {
    const match = hash.match(pattern);
    if (match) {
      try {
        stopView = (await view(match)) || null;
      } catch (e) {
        mount(errorBox(e));
      }
      return;
    }
  }
  location.hash = "#/dags";
}

async function start() {
  document.getElementById("signout").addEventListener("click", () => {
    session.clear();
    route();
  });
  window.addEventListener("slipstream:signed-out", () => {
    session.clear();
    signInForm("Your session ended; sign in again.");
  });
  window.addEventListener("hashchange", arrive);
  arrive();
}

// A sign-in link can also arrive in a tab that already shows the UI (only the
// fragment changes, so the page does not reload): handle it on every change.
async function arrive() {
  const code = new URLSearchParams(location.hash.slice(1)).get("signin");
  if (code) {
    session.clear();
    if (!(await signInWithCode(code))) return;
  }
  route();
}

start();
