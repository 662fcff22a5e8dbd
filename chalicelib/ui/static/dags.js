// The DAG list: one page of DAGs (search and tag filter are the API's own query
// parameters), each with its schedule in words, next run, last runs and paused switch,
// all from one GET /api/v2/slipstream/dags (the DAGs with their latest runs and triggers),
// and above them the files the last deploy refused (GET /api/v2/importErrors).

import { api, enc, may, poll } from "./api.js";
import { h, mount, when, errorBox, announce } from "./dom.js";
import { stateOf } from "./states.js";

const PAGE = 25;

function stateChip(state, label) {
  const s = stateOf(state);
  return h("span", { class: "chip", style: `background:${s.color};color:${s.ink}`, title: label, "aria-label": label }, s.letter);
}

function recentRuns(runs) {
  if (!runs) return h("span", { class: "muted" }, "…");
  if (!runs.length) return h("span", { class: "muted" }, "no runs");
  return h("span", { class: "chips" },
    runs.slice().reverse().map((r) => stateChip(r.state, `${r.dag_run_id}: ${r.state}`)));
}

// An event trigger in a few words: "S3 landing-zone/orders/*.csv", "EventBridge ...".
function describeTrigger(t) {
  const d = t.description || {};
  if (t.type === "s3") return `⚡ S3 ${d.bucket}/${d.prefix || ""}*${d.suffix || ""}`;
  const parts = Object.entries(d).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join("|") : typeof v === "object" ? JSON.stringify(v) : v}`);
  return `⚡ ${t.type === "eventbridge" ? "EventBridge" : t.type} ${parts.join(" ")}`.trim();
}

function pausedSwitch(dag, onChange) {
  const id = `paused-${dag.dag_id}`;
  if (!may("user")) {
    return h("span", {}, dag.is_paused ? "paused" : "active");
  }
  const box = h("input", {
    type: "checkbox", id, checked: !dag.is_paused,
    "aria-label": `${dag.dag_id} active (unpaused)`,
    onchange: async () => {
      box.disabled = true;
      try {
        await api.patch(`/dags/${enc(dag.dag_id)}`, { is_paused: !box.checked });
        announce(`${dag.dag_id} ${box.checked ? "unpaused" : "paused"}`);
        onChange();
      } catch (e) {
        box.checked = !box.checked;
        announce(e.message);
      } finally {
        box.disabled = false;
      }
    },
  });
  return h("label", { class: "switch", for: id }, box, h("span", {}, dag.is_paused ? "paused" : "active"));
}

const IMPORT_ERRORS_SHOWN = 100;

// The files the tenant's last deploy refused, folded into one line that opens
// (a native <details>: Enter or Space on its summary) to each file and its problems.
function importErrorBanner(answer) {
  const n = answer.total_entries;
  if (!n) return null;
  const files = n === 1 ? "1 DAG file failed" : `${n} DAG files failed`;
  const more = n > answer.import_errors.length ? h("li", { class: "muted" }, `and ${n - answer.import_errors.length} more (GET /api/v2/importErrors)`) : null;
  return h("details", { class: "import-errors", id: "import-errors" },
    h("summary", { class: "error" }, `⚠ ${files} to import in the last deploy`),
    h("ul", {}, answer.import_errors.map((e) => h("li", {},
      h("strong", {}, e.filename), h("pre", { class: "import-error-text" }, e.stack_trace))), more));
}

export async function dagsView() {
  const params = new URLSearchParams((location.hash.split("?")[1]) || "");
  let offset = 0;
  const search = h("input", { id: "dag-search", type: "search", value: params.get("q") || "", placeholder: "part of a DAG id" });
  const tag = h("input", { id: "dag-tag", type: "text", value: params.get("tag") || "", placeholder: "a tag" });
  const paused = h("select", { id: "dag-paused" },
    h("option", { value: "" }, "all"), h("option", { value: "false" }, "active"), h("option", { value: "true" }, "paused"));
  const body = h("tbody");
  const count = h("p", { class: "muted", "aria-live": "polite" });
  const prev = h("button", { type: "button", onclick: () => { offset = Math.max(0, offset - PAGE); refresh(true); } }, "Previous page");
  const next = h("button", { type: "button", onclick: () => { offset += PAGE; refresh(true); } }, "Next page");
  const problem = h("div");
  const banner = h("div", { "aria-live": "polite" });
  const runsByDag = new Map();
  const triggersByDag = new Map();

  const filters = h("form", { class: "filters", role: "search", onsubmit: (e) => { e.preventDefault(); offset = 0; refresh(true); } },
    h("label", { for: "dag-search" }, "Search"), search,
    h("label", { for: "dag-tag" }, "Tag"), tag,
    h("label", { for: "dag-paused" }, "Show"), paused,
    h("button", { type: "submit" }, "Filter"));

  function row(dag) {
    const link = h("a", { href: `#/dags/${enc(dag.dag_id)}/grid` }, dag.dag_display_name);
    const tags = dag.tags.map((t) => h("button", {
      type: "button", class: "tag", "aria-label": `filter by tag ${t.name}`,
      onclick: () => { tag.value = t.name; offset = 0; refresh(true); },
    }, t.name));
    return h("tr", { "data-dag": dag.dag_id },
      h("td", {}, link, dag.dag_display_name !== dag.dag_id ? h("div", { class: "muted" }, dag.dag_id) : null,
        dag.has_import_errors ? h("div", { class: "error" }, "⚠ import error") : null),
      h("td", {}, tags),
      h("td", {}, dag.timetable_description || dag.timetable_summary || "none",
        dag.timetable_summary && dag.timetable_summary !== "None" ? h("div", { class: "muted" }, dag.timetable_summary) : null,
        (triggersByDag.get(dag.dag_id) || []).map((t) => h("div", { class: "trigger-desc" }, describeTrigger(t)))),
      h("td", {}, dag.is_paused ? h("span", { class: "muted" }, "paused") : when(dag.next_dagrun_run_after)),
      h("td", {}, recentRuns(runsByDag.get(dag.dag_id))),
      h("td", {}, pausedSwitch(dag, () => refresh(true))),
      h("td", {}, may("user") ? h("a", { class: "button", href: `#/dags/${enc(dag.dag_id)}/trigger`, "aria-label": `Trigger ${dag.dag_id}` }, "Trigger") : null));
  }

  let dags = [];
  function render() {
    // A poll that changed something redraws the rows; keep the keyboard focus.
    const focused = document.activeElement && body.contains(document.activeElement) ? document.activeElement.id : null;
    body.replaceChildren(...dags.map(row));
    if (focused) document.getElementById(focused)?.focus();
  }

  async function refreshImportErrors(force) {
    const answer = await api.get("/importErrors", { limit: IMPORT_ERRORS_SHOWN, order_by: "filename" });
    if (!answer.changed && !force) return;
    const wasOpen = document.getElementById("import-errors")?.open;
    const shown = importErrorBanner(answer.data);
    if (shown && wasOpen) shown.open = true;
    banner.replaceChildren(...(shown ? [shown] : []));
  }

  async function refresh(force) {
    // One call: the page of DAGs with each one's last five runs and event triggers.
    const query = new URLSearchParams({ limit: PAGE, offset, order_by: "dag_id", dag_runs_limit: 5 });
    if (search.value.trim()) query.set("dag_id_pattern", search.value.trim());
    if (tag.value.trim()) query.set("tags", tag.value.trim());
    if (paused.value) query.set("paused", paused.value);
    try {
      const [answer] = await Promise.all([api.get("/slipstream/dags", query), refreshImportErrors(force)]);
      problem.replaceChildren();
      if (!answer.changed && !force) return;
      dags = answer.data.dags;
      for (const d of dags) {
        runsByDag.set(d.dag_id, d.latest_dag_runs);
        triggersByDag.set(d.dag_id, d.event_triggers);
      }
      count.textContent = `${answer.data.total_entries} DAGs, showing ${dags.length ? offset + 1 : 0}–${offset + dags.length}`;
      prev.disabled = offset === 0;
      next.disabled = offset + PAGE >= answer.data.total_entries;
    } catch (e) {
      problem.replaceChildren(errorBox(e));
      return;
    }
    render();
  }

  mount(h("section", { "aria-labelledby": "dags-title" },
    h("h1", { id: "dags-title" }, "DAGs"), banner, filters, problem, count,
    h("table", { class: "table", id: "dag-table" },
      h("caption", { class: "sr-only" }, "DAGs of this tenant"),
      h("thead", {}, h("tr", {}, ["DAG", "Tags", "Schedule", "Next run", "Last runs", "Active", "Actions"].map((c) => h("th", { scope: "col" }, c)))),
      body),
    h("nav", { class: "pager", "aria-label": "DAG pages" }, prev, next)));
  return poll(() => refresh(false), 5000);
}
