// Backfill: a date range, reprocess behaviour, max active runs and direction, a
// dry run listing the logical dates, and the DAG's backfills with their progress
// (its runs in the range, by state) and pause, resume and cancel.

import { api, enc, may, poll } from "./api.js";
import { h, mount, when, errorBox, announce } from "./dom.js";
import { stateOf } from "./states.js";

function isoOf(input) {
  // datetime-local has no zone: the UI works in UTC, as the rest of its times.
  return input.value ? new Date(input.value + "Z").toISOString() : null;
}

export async function backfillView(dagId) {
  const { data: dag } = await api.get(`/dags/${enc(dagId)}`);
  const list = h("div", { id: "backfills", "aria-live": "polite" });
  const preview = h("div", { id: "backfill-preview" });
  const status = h("div");

  async function progress(b) {
    const query = new URLSearchParams({ limit: 100, logical_date_gte: b.from_date, logical_date_lte: b.to_date });
    query.append("run_type", "backfill");
    const { data } = await api.get(`/dags/${enc(dagId)}/dagRuns`, query);
    const counts = {};
    for (const r of data.dag_runs) counts[r.state] = (counts[r.state] || 0) + 1;
    return { counts, total: data.total_entries };
  }

  function control(label, path, id) {
    return h("button", { type: "button", id, onclick: async () => {
      try { await api.put(path); announce(`${label}: done`); } catch (e) { status.replaceChildren(errorBox(e)); }
      refresh();
    } }, label);
  }

  async function refresh() {
    const { data } = await api.get("/backfills", { dag_id: dagId, limit: 20, order_by: "-id" });
    const rows = await Promise.all(data.backfills.map(async (b) => {
      const p = await progress(b);
      const chips = Object.entries(p.counts).map(([state, n]) => {
        const s = stateOf(state);
        return h("span", { class: "count" }, h("span", { class: "chip", style: `background:${s.color};color:${s.ink}`, "aria-hidden": "true" }, s.letter), ` ${n} ${state}`);
      });
      const done = b.completed_at !== null;
      const actions = may("op") && !done ? [
        b.is_paused ? control("Resume", `/backfills/${b.id}/unpause`, `resume-${b.id}`) : control("Pause", `/backfills/${b.id}/pause`, `pause-${b.id}`),
        control("Cancel", `/backfills/${b.id}/cancel`, `cancel-${b.id}`),
      ] : [];
      return h("tr", { "data-backfill": b.id },
        h("td", {}, `#${b.id}`),
        h("td", { class: "nowrap" }, `${when(b.from_date).slice(0, 10)} → ${when(b.to_date).slice(0, 10)}`),
        h("td", {}, b.reprocess_behavior, h("div", { class: "muted" }, `max ${b.max_active_runs} active`)),
        h("td", { class: "progress" }, chips.length ? chips : h("span", { class: "muted" }, "no runs yet")),
        h("td", {}, done ? `completed ${when(b.completed_at)}` : b.is_paused ? "paused" : "running"),
        h("td", {}, actions));
    }));
    list.replaceChildren(rows.length
      ? h("table", { class: "table", id: "backfill-table" },
        h("thead", {}, h("tr", {}, ["Backfill", "Range", "Reprocess", "Progress (runs)", "Status", "Actions"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, rows))
      : h("p", { class: "muted" }, "No backfills of this DAG yet."));
  }

  let form = null;
  if (may("op")) {
    const from = h("input", { id: "bf-from", type: "datetime-local", required: true });
    const to = h("input", { id: "bf-to", type: "datetime-local", required: true });
    const reprocess = h("select", { id: "bf-reprocess" },
      h("option", { value: "none" }, "none: skip dates that have a run"),
      h("option", { value: "failed" }, "failed: rerun dates whose run failed"),
      h("option", { value: "completed" }, "completed: rerun every date"));
    const maxActive = h("input", { id: "bf-max", type: "number", min: "1", value: "10" });
    const backwards = h("input", { id: "bf-backwards", type: "checkbox" });
    const body = () => {
      const fromIso = isoOf(from);
      const toIso = isoOf(to);
      if (!fromIso || !toIso) throw new Error("Give both dates.");
      if (fromIso > toIso) throw new Error("The start date is after the end date.");
      const max = Number(maxActive.value);
      if (!Number.isInteger(max) || max < 1) throw new Error("Max active runs must be a whole number, at least 1.");
      return { dag_id: dagId, from_date: fromIso, to_date: toIso, reprocess_behavior: reprocess.value, max_active_runs: max, run_backwards: backwards.checked };
    };
    const dry = h("button", { type: "button", id: "bf-dry-run", onclick: async () => {
      status.replaceChildren();
      try {
        const { data } = await api.post("/backfills/dry_run", body());
        preview.replaceChildren(
          h("p", {}, `${data.total_entries} run(s) would be created:`),
          h("ul", {}, data.backfills.slice(0, 50).map((b) => h("li", {}, when(b.logical_date)))),
          data.skipped && data.skipped.length ? h("p", { class: "muted" }, `${data.skipped.length} date(s) skipped: ${data.skipped.slice(0, 5).map((s) => `${when(s.logical_date)} (${s.reason})`).join(", ")}`) : null);
      } catch (e) { status.replaceChildren(errorBox(e)); }
    } }, "Dry run");
    form = h("form", { class: "card", "aria-labelledby": "bf-title", novalidate: true, onsubmit: async (event) => {
      event.preventDefault();
      status.replaceChildren();
      try {
        const { data } = await api.post("/backfills", body());
        announce(`backfill ${data.id} started`);
        preview.replaceChildren();
        refresh();
      } catch (e) { status.replaceChildren(errorBox(e)); }
    } },
      h("h2", { id: "bf-title" }, "New backfill (times in UTC)"),
      h("div", { class: "filters" },
        h("label", { for: "bf-from" }, "From"), from,
        h("label", { for: "bf-to" }, "To"), to,
        h("label", { for: "bf-reprocess" }, "Reprocess"), reprocess,
        h("label", { for: "bf-max" }, "Max active runs"), maxActive,
        h("label", { for: "bf-backwards" }, backwards, " newest first")),
      h("div", { class: "actions" }, dry, h("button", { type: "submit", id: "bf-start" }, "Start backfill")),
      status, preview);
  }

  mount(h("section", { "aria-labelledby": "backfill-title" },
    h("h1", { id: "backfill-title" }, `Backfills of ${dag.dag_display_name}`),
    h("p", {}, h("a", { class: "button", href: `#/dags/${enc(dagId)}/grid` }, "Grid")),
    form, h("h2", {}, "Backfills"), list));
  return poll(refresh, 3000);
}
