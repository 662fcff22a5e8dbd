// Run detail: the run's task instances (state, try, duration), one instance's
// tries and log (paged; a running try is followed live), and clear / mark
// success / mark failed, each shown first as a dry run listing what changes.

import { api, enc, may, poll } from "./api.js";
import { h, mount, when, seconds, errorBox, announce } from "./dom.js";
import { stateOf, FINISHED } from "./states.js";
import { deadlinesBox } from "./deadlines.js";

function stateCell(state) {
  const s = stateOf(state);
  return h("span", { class: "state" },
    h("span", { class: "chip", style: `background:${s.color};color:${s.ink}`, "aria-hidden": "true" }, s.letter),
    " ", state || "no status");
}

// The last try's template fields as rendered (secrets already masked by the
// worker): text as it was sent, anything else as JSON.
function renderedFields(fields) {
  return h("dl", { class: "facts rendered", id: "rendered-fields" },
    Object.entries(fields).flatMap(([name, value]) => [
      h("dt", {}, name),
      h("dd", {}, value === null ? h("span", { class: "muted" }, "none")
        : h("pre", { class: "values" }, typeof value === "string" ? value : JSON.stringify(value, null, 1))),
    ]));
}

function tiKey(ti) {
  return ti.map_index >= 0 ? `${ti.task_id}[${ti.map_index}]` : ti.task_id;
}

export async function runView(dagId, runId) {
  const base = `/dags/${enc(dagId)}/dagRuns/${enc(runId)}`;
  const wanted = new URLSearchParams(location.hash.split("?")[1] || "").get("task");
  let selected = null; // {task_id, map_index}
  let instances = [];
  let run = null;
  const head = h("div");
  const body = h("tbody");
  const side = h("section", { class: "card side", "aria-labelledby": "ti-title" },
    h("h2", { id: "ti-title" }, "Task instance"), h("p", { class: "muted" }, "Choose a task instance."));
  const problem = h("div");
  const cost = h("section", { class: "card", id: "cost", "aria-labelledby": "cost-title" },
    h("h2", { id: "cost-title" }, "AWS calls and cost"), h("p", { class: "muted" }, "Loading…"));
  const deadlines = deadlinesBox(dagId, runId);
  let stopLog = null;
  let costState = null;

  // What the run's workers called and what that cost (Slipstream's usage endpoint);
  // read again only when the run's state changes.
  async function loadCost() {
    try {
      const { data } = await api.get(`/slipstream${base}/usage`);
      const rows = Object.entries(data.calls).flatMap(([service, ops]) =>
        Object.entries(ops).map(([op, n]) => h("tr", {}, h("td", {}, service), h("td", {}, op), h("td", { class: "num" }, String(n)))));
      const usd = (v) => `$${Number(v).toFixed(6)}`;
      cost.replaceChildren(
        h("h2", { id: "cost-title" }, "AWS calls and cost"),
        h("p", {}, `${data.total_calls} calls by ${data.tries_metered} tries, ${data.worker_seconds.toFixed(1)} s of worker time: `,
          h("strong", {}, usd(data.estimated_total_usd)),
          " (", Object.entries(data.estimated_cost_usd).map(([k, v]) => `${k} ${usd(v)}`).join(", "), ")"),
        h("details", {}, h("summary", {}, "Calls by operation"),
          h("table", { class: "table" }, h("thead", {}, h("tr", {}, ["Service", "Operation", "Calls"].map((c) => h("th", { scope: "col" }, c)))), h("tbody", {}, rows))),
        h("p", { class: "muted" }, data.counted));
    } catch (e) {
      cost.replaceChildren(h("h2", { id: "cost-title" }, "AWS calls and cost"), errorBox(e));
    }
  }

  function renderTable() {
    body.replaceChildren(...instances.map((ti) => {
      const isSel = selected && tiKey(selected) === tiKey(ti);
      return h("tr", { class: isSel ? "selected" : "", "data-ti": tiKey(ti) },
        h("td", {}, h("button", { type: "button", class: "linkish", "aria-pressed": isSel ? "true" : "false",
          onclick: () => select(ti) }, tiKey(ti))),
        h("td", {}, stateCell(ti.state)),
        h("td", { class: "nowrap" }, `${ti.try_number}`, h("span", { class: "muted" }, ` of ${ti.max_tries + 1}`)),
        h("td", { class: "nowrap" }, seconds(ti.duration)),
        h("td", { class: "nowrap" }, when(ti.start_date).slice(5)));
    }));
  }

  function renderHead() {
    const s = stateOf(run.state);
    head.replaceChildren(
      h("h1", { id: "run-title" }, `${dagId} · ${runId}`),
      h("p", {}, h("span", { class: "chip", style: `background:${s.color};color:${s.ink}`, "aria-hidden": "true" }, s.letter),
        ` ${run.state} · ${run.run_type} · version ${(run.dag_versions || []).map((v) => v.version_number).join(", ") || "?"} · started ${when(run.start_date)} · ${seconds(run.duration)}`),
      h("p", {}, h("a", { class: "button", href: `#/dags/${enc(dagId)}/grid` }, "Grid"),
        run.conf && Object.keys(run.conf).length ? h("code", { class: "conf" }, " conf " + JSON.stringify(run.conf)) : null));
  }

  async function confirmChange(title, dryRun, apply) {
    let affected;
    try {
      affected = (await dryRun()).data.task_instances || [];
    } catch (e) {
      announce(e.message);
      side.append(errorBox(e));
      return;
    }
    const dialog = h("dialog", { class: "confirm", "aria-labelledby": "confirm-title" },
      h("h2", { id: "confirm-title" }, title),
      h("p", {}, affected.length ? `${affected.length} task instance(s) will change:` : "Nothing would change."),
      h("ul", { id: "confirm-list" }, affected.map((ti) => h("li", {}, `${tiKey(ti)} (now ${ti.state || "no status"})`))),
      h("div", { class: "actions" },
        h("button", { type: "button", id: "confirm-yes", disabled: !affected.length, onclick: async () => {
          dialog.close();
          dialog.remove();
          try { await apply(); announce(`${title}: done`); } catch (e) { side.append(errorBox(e)); }
          refresh(true);
        } }, "Confirm"),
        h("button", { type: "button", onclick: () => { dialog.close(); dialog.remove(); } }, "Cancel")));
    document.body.append(dialog);
    dialog.showModal();
  }

  function actions(ti) {
    if (!may("user")) return null;
    const downstream = h("input", { type: "checkbox", id: "with-downstream" });
    const path = `${base}/taskInstances/${enc(ti.task_id)}`;
    const mapQuery = ti.map_index >= 0 ? { map_index: ti.map_index } : undefined;
    const clearBody = (dry) => ({
      dry_run: dry, only_failed: false, dag_run_id: runId, include_downstream: downstream.checked,
      task_ids: [ti.map_index >= 0 ? [ti.task_id, ti.map_index] : ti.task_id],
    });
    const mark = (state) => () => confirmChange(`Mark ${tiKey(ti)} ${state}`,
      () => api.patch(`${path}/dry_run`, { new_state: state, include_downstream: downstream.checked }, mapQuery),
      () => api.patch(path, { new_state: state, include_downstream: downstream.checked }, mapQuery));
    return h("div", { class: "actions" },
      h("label", { for: "with-downstream" }, downstream, " with downstream"),
      h("button", { type: "button", id: "clear-ti", onclick: () => confirmChange(`Clear ${tiKey(ti)}`,
        () => api.post(`/dags/${enc(dagId)}/clearTaskInstances`, clearBody(true)),
        () => api.post(`/dags/${enc(dagId)}/clearTaskInstances`, clearBody(false))) }, "Clear…"),
      h("button", { type: "button", id: "mark-success", onclick: mark("success") }, "Mark success…"),
      h("button", { type: "button", id: "mark-failed", onclick: mark("failed") }, "Mark failed…"));
  }

  function showLog(ti, tryNumber) {
    if (stopLog) stopLog();
    const pre = h("pre", { class: "log", id: "log", tabindex: 0, "aria-label": `Log of ${tiKey(ti)} try ${tryNumber}` });
    const more = h("button", { type: "button", id: "log-more", hidden: true }, "Load more");
    const state = h("p", { class: "muted", "aria-live": "polite" }, "Loading log…");
    let token = null;
    let lines = 0;
    const path = `${base}/taskInstances/${enc(ti.task_id)}/logs/${tryNumber}`;
    const page = async () => {
      const query = { limit: 500 };
      if (ti.map_index >= 0) query.map_index = ti.map_index;
      if (token) query.token = token;
      const { data } = await api.get(path, query);
      const text = data.content.map((l) => `${(l.timestamp || "").slice(11, 23)} ${(l.level || "").toUpperCase().padEnd(7)} ${l.event ?? ""}`).join("\n");
      if (text) pre.append((lines ? "\n" : "") + text);
      lines += data.content.length;
      token = data.continuation_token || token;
      return { open: !!data.continuation_token };
    };
    const box = h("div", {}, pre, more, state);
    more.addEventListener("click", async () => {
      const r = await page();
      more.hidden = !r.open;
      state.textContent = `${lines} lines`;
    });
    (async () => {
      try {
        const r = await page();
        state.textContent = `${lines} lines`;
        // A finished try's further pages load on request (a log can be many MB).
        more.hidden = !(r.open && FINISHED.has(ti.state));
        if (r.open && !FINISHED.has(ti.state)) {
          state.textContent = `${lines} lines · following the running try`;
          stopLog = poll(async () => {
            const res = await page();
            state.textContent = `${lines} lines${res.open ? " · following the running try" : ""}`;
            if (!res.open && stopLog) stopLog();
          }, 2000);
        }
      } catch (e) {
        state.textContent = e.message;
      }
    })();
    return box;
  }

  // The instance's XComs: the list, then each value (at most 10 shown).
  function xcomBox(ti) {
    const box = h("dl", { class: "facts", id: "xcom" }, h("dd", { class: "muted" }, "Loading…"));
    const path = `${base}/taskInstances/${enc(ti.task_id)}/xcomEntries`;
    const query = ti.map_index >= 0 ? { map_index: ti.map_index } : undefined;
    (async () => {
      try {
        const { data } = await api.get(path, query);
        const entries = data.xcom_entries.slice(0, 10);
        if (!entries.length) { box.replaceChildren(h("dd", { class: "muted" }, "none")); return; }
        const values = await Promise.all(entries.map((e) => api.get(`${path}/${enc(e.key)}`, query).then((a) => a.data.value, () => "(unreadable)")));
        box.replaceChildren(...entries.flatMap((e, i) => [h("dt", {}, e.key), h("dd", {}, h("code", {}, JSON.stringify(values[i])))]));
      } catch (e) {
        box.replaceChildren(h("dd", { class: "error" }, e.message));
      }
    })();
    return box;
  }

  function renderSide() {
    if (!selected) return;
    const ti = instances.find((t) => tiKey(t) === tiKey(selected)) || selected;
    const tries = h("select", { id: "try-select" },
      Array.from({ length: Math.max(ti.try_number, 1) }, (_, i) => h("option", { value: String(i + 1), selected: i + 1 === ti.try_number }, `try ${i + 1}`)));
    const logBox = h("div");
    tries.addEventListener("change", () => logBox.replaceChildren(showLog(ti, Number(tries.value))));
    // DOM's replaceChildren writes null as text: drop the parts a role does not get.
    side.replaceChildren(...[
      h("h2", { id: "ti-title" }, tiKey(ti)),
      h("dl", { class: "facts" },
        h("dt", {}, "State"), h("dd", { id: "ti-state" }, stateCell(ti.state)),
        h("dt", {}, "Try"), h("dd", {}, `${ti.try_number} of ${ti.max_tries + 1}`),
        h("dt", {}, "Duration"), h("dd", {}, seconds(ti.duration)),
        h("dt", {}, "Started"), h("dd", {}, when(ti.start_date)),
        h("dt", {}, "Ended"), h("dd", {}, when(ti.end_date))),
      actions(ti),
      Object.keys(ti.rendered_fields || {}).length
        ? [h("h3", {}, "Rendered fields"), renderedFields(ti.rendered_fields)]
        : null,
      h("h3", {}, "XCom"), xcomBox(ti),
      h("h3", {}, "Log"), h("label", { for: "try-select" }, "Try "), tries, logBox,
    ].flat().filter(Boolean));
    logBox.replaceChildren(showLog(ti, Math.max(ti.try_number, 1)));
  }

  function select(ti) {
    selected = ti;
    renderTable();
    renderSide();
    document.getElementById("ti-title")?.focus?.();
  }

  let lastSideKey = "";
  async function refresh(force) {
    try {
      const [r, tis] = await Promise.all([api.get(base), api.get(`${base}/taskInstances`, { limit: 1000 })]);
      problem.replaceChildren();
      run = r.data;
      if (r.changed || force) renderHead();
      if (run.state !== costState) { costState = run.state; loadCost(); deadlines.load(); }
      if (tis.changed || force) {
        instances = tis.data.task_instances;
        renderTable();
        if (!selected && wanted) selected = instances.find((t) => t.task_id === wanted) || null;
        const sel = selected && instances.find((t) => tiKey(t) === tiKey(selected));
        const key = sel ? `${tiKey(sel)}:${sel.state}:${sel.try_number}` : "";
        if (key !== lastSideKey) { lastSideKey = key; renderTable(); renderSide(); }
      }
    } catch (e) {
      problem.replaceChildren(errorBox(e));
    }
  }

  mount(h("div", { class: "run" }, head, problem,
    h("div", { class: "split" },
      h("section", { "aria-labelledby": "tis-title" },
        h("h2", { id: "tis-title" }, "Task instances"),
        h("table", { class: "table", id: "ti-table" },
          h("thead", {}, h("tr", {}, ["Task", "State", "Try", "Duration", "Started (UTC)"].map((c) => h("th", { scope: "col" }, c)))),
          body),
        cost, deadlines.node),
      side)));
  const stop = poll(() => refresh(false), 2500);
  return () => { stop(); if (stopLog) stopLog(); };
}
