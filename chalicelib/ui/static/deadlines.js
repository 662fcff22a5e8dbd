// A run's deadline alerts (DAG(deadline=...)) for the run view: when each falls,
// whether the run met or missed it, and whether its callback went out, from
// Slipstream's deadlines endpoint (Airflow's REST API has no deadline resource).

import { api, enc } from "./api.js";
import { h, when, errorBox } from "./dom.js";

function interval(secondsValue) {
  const s = Math.abs(secondsValue);
  const text = s % 3600 === 0 ? `${s / 3600} h` : s % 60 === 0 ? `${s / 60} min` : `${s} s`;
  return secondsValue < 0 ? `${text} before` : `${text} after`;
}

// The section and a load() to call when the run's state changes (a deadline's
// state only moves when the scheduler looks at the run).
export function deadlinesBox(dagId, runId) {
  const title = h("h2", { id: "deadlines-title" }, "Deadlines");
  const node = h("section", { class: "card", id: "deadlines", "aria-labelledby": "deadlines-title" },
    title, h("p", { class: "muted" }, "Loading…"));
  async function load() {
    try {
      const { data } = await api.get(`/slipstream/dags/${enc(dagId)}/dagRuns/${enc(runId)}/deadlines`);
      if (!data.deadlines.length) {
        node.replaceChildren(title, h("p", { class: "muted" }, "This DAG sets no deadline."));
        return;
      }
      const rows = data.deadlines.map((d) => h("tr", { "data-deadline": String(d.index) },
        h("td", {}, d.name || `#${d.index + 1}`),
        h("td", {}, `${interval(d.interval_seconds)} ${d.reference}`),
        h("td", { class: "nowrap" }, d.deadline_time ? when(d.deadline_time) : "not yet known"),
        // A word, not only a colour: "missed" is also bold.
        h("td", {}, d.missed ? h("strong", { class: "error" }, `missed ${when(d.missed_at)}`) : d.state),
        h("td", {}, `${d.callback}${d.callback_sent ? " (sent)" : ""}`)));
      node.replaceChildren(title, h("table", { class: "table", id: "deadline-table" },
        h("thead", {}, h("tr", {}, ["Deadline", "When", "Falls at (UTC)", "State", "Callback"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, rows)));
    } catch (e) {
      node.replaceChildren(title, errorBox(e));
    }
  }
  return { node, load };
}
