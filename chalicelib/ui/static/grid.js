// The grid: runs (columns, oldest left) x tasks (rows), drawn on a canvas that only
// paints the rows in view, so 10,000 tasks cost no more DOM than 10. Task groups
// (ids "group.task") fold; a mapped task is one row with counts per state and
// unfolds to its instances. Keyboard: arrows move, Enter opens, Space folds.

import { api, enc, may, poll } from "./api.js";
import { h, mount, announce, when } from "./dom.js";
import { stateOf, FINISHED } from "./states.js";
import { buildRows, cellOf, RUN_TYPES } from "./grid_model.js";

const ROW = 22;
const CELL = 26;
const LABEL = 300;
const HEAD = 64;
const RUNS = 25;

// A run's instances, page by page; `changed` is false when every page was a 304.
async function allInstances(dagId, runId) {
  const out = [];
  let changed = false;
  for (let offset = 0; ; offset += 1000) {
    const page = await api.get(`/dags/${enc(dagId)}/dagRuns/${enc(runId)}/taskInstances`, { limit: 1000, offset });
    changed = changed || page.changed;
    for (const ti of page.data.task_instances) out.push(ti);
    if (page.data.task_instances.length < 1000 || out.length >= page.data.total_entries) return { out, changed };
  }
}

export async function gridView(dagId) {
  const [{ data: tasks }, { data: dag }] = await Promise.all([
    api.get(`/dags/${enc(dagId)}/tasks`),
    api.get(`/dags/${enc(dagId)}`),
  ]);
  const folded = new Set();
  const unfolded = new Set();
  let runs = [];
  const instances = new Map(); // run id -> [ti]
  let rows = [];
  let focus = { row: 0, col: -1 };

  const canvas = h("canvas", { tabindex: 0, role: "img", class: "grid-canvas",
    "aria-label": `Grid of ${dagId}: tasks by runs. Arrow keys move between cells, Enter opens the run, Space folds a group or mapped task.` });
  const spacer = h("div", { class: "grid-spacer" });
  const scroller = h("div", { class: "grid-scroll", id: "grid" }, canvas, spacer);
  const status = h("p", { id: "grid-cell", class: "cell-status", "aria-live": "polite" }, "Select a cell to see its state.");
  const legend = h("ul", { class: "legend", "aria-label": "Legend" },
    Object.entries({ success: 1, failed: 1, running: 1, queued: 1, scheduled: 1, up_for_retry: 1, upstream_failed: 1, skipped: 1, deferred: 1, none: 1 })
      .map(([name]) => { const s = stateOf(name); return h("li", {}, h("span", { class: "chip", style: `background:${s.color};color:${s.ink}` }, s.letter), " ", name === "none" ? "no status" : name.replace(/_/g, " ")); }));

  function draw() {
    const width = LABEL + Math.max(runs.length, 1) * CELL + 20;
    const full = HEAD + rows.length * ROW + 4;
    scroller.style.height = `${Math.min(full + 2, Math.max(240, window.innerHeight * 0.65))}px`;
    const height = Math.min(scroller.clientHeight || 600, full);
    const ratio = window.devicePixelRatio || 1;
    spacer.style.height = `${HEAD + rows.length * ROW}px`;
    spacer.style.width = `${width}px`;
    canvas.style.width = `${width}px`;
    canvas.style.height = `${height}px`;
    canvas.width = width * ratio;
    canvas.height = height * ratio;
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = "13px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    const first = Math.floor(scroller.scrollTop / ROW);
    const visible = Math.ceil((height - HEAD) / ROW) + 1;
    for (let i = first; i < Math.min(rows.length, first + visible); i++) {
      const y = HEAD + (i - first) * ROW - (scroller.scrollTop % ROW);
      if (y < HEAD - ROW) continue;
      const r = rows[i];
      if (i === focus.row) { ctx.fillStyle = "#e3f2fd"; ctx.fillRect(0, y, width, ROW); }
      ctx.fillStyle = "#1a1a1a";
      const mark = r.kind === "group" ? (folded.has(r.id) ? "▸ " : "▾ ") : r.kind === "mapped" ? (unfolded.has(r.id) ? "▾ " : "▸ ") : "";
      const label = mark + r.label + (r.kind === "mapped" ? " [ ]" : "");
      ctx.fillText(label.length > 40 ? label.slice(0, 39) + "…" : label, 6 + r.depth * 14, y + ROW / 2);
      runs.forEach((run, c) => {
        const cell = cellOf(r, instances.get(run.dag_run_id));
        const s = stateOf(cell.state);
        const x = LABEL + c * CELL;
        ctx.fillStyle = s.color;
        ctx.fillRect(x + 2, y + 2, CELL - 4, ROW - 4);
        if (i === focus.row && c === focus.col) { ctx.strokeStyle = "#000"; ctx.lineWidth = 2; ctx.strokeRect(x + 1, y + 1, CELL - 2, ROW - 2); }
        ctx.fillStyle = s.ink;
        ctx.textAlign = "center";
        ctx.fillText(s.letter, x + CELL / 2, y + ROW / 2 + 1);
        ctx.textAlign = "left";
      });
    }
    // Header (drawn last, over any row scrolled under it): run state, type and version.
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, width, HEAD);
    ctx.fillStyle = "#333";
    ctx.fillText("Task  \\  Run →", 6, HEAD - 12);
    runs.forEach((run, c) => {
      const x = LABEL + c * CELL;
      const s = stateOf(run.state);
      ctx.fillStyle = s.color;
      ctx.fillRect(x + 2, 4, CELL - 4, 20);
      ctx.fillStyle = s.ink;
      ctx.textAlign = "center";
      ctx.fillText(s.letter, x + CELL / 2, 15);
      ctx.fillStyle = "#333";
      ctx.font = "11px system-ui, sans-serif";
      ctx.fillText(RUN_TYPES[run.run_type] || "?", x + CELL / 2, 36);
      const version = (run.dag_versions || []).map((v) => v.version_number).pop();
      ctx.font = "10px system-ui, sans-serif";
      ctx.fillText(version ? `v${version}` : "", x + CELL / 2, 54);
      ctx.font = "13px system-ui, sans-serif";
      ctx.textAlign = "left";
    });
    ctx.strokeStyle = "#ccc";
    ctx.beginPath(); ctx.moveTo(0, HEAD - 0.5); ctx.lineTo(width, HEAD - 0.5); ctx.stroke();
  }

  function describe() {
    const r = rows[focus.row];
    if (!r) return;
    if (focus.col < 0) {
      status.textContent = `${r.kind === "group" ? "Group" : r.kind === "mapped" ? "Mapped task" : "Task"} ${r.id}`;
    } else {
      const run = runs[focus.col];
      const cell = cellOf(r, instances.get(run.dag_run_id));
      const counts = cell.counts ? " (" + Object.entries(cell.counts).map(([k, v]) => `${v} ${k}`).join(", ") + ")" : "";
      status.textContent = `${r.id} in ${run.dag_run_id} (${run.run_type}): ${cell.state || "no status"}${counts}${cell.try ? `, try ${cell.try}` : ""}`;
    }
    announce(status.textContent);
  }

  function rebuild() {
    rows = buildRows(tasks.tasks, folded, unfolded, instances);
    focus.row = Math.min(focus.row, Math.max(rows.length - 1, 0));
    draw();
  }

  function toggle(r) {
    if (r.kind === "group") { folded.has(r.id) ? folded.delete(r.id) : folded.add(r.id); }
    if (r.kind === "mapped") { unfolded.has(r.id) ? unfolded.delete(r.id) : unfolded.add(r.id); }
    rebuild();
  }

  function open(r, col) {
    const run = runs[col];
    if (!run) return;
    location.hash = `#/dags/${enc(dagId)}/runs/${enc(run.dag_run_id)}?task=${enc(r.taskId || r.id)}`;
  }

  canvas.addEventListener("click", (event) => {
    const rect = canvas.getBoundingClientRect();
    const x = event.clientX - rect.left;
    const y = event.clientY - rect.top;
    const col = x < LABEL ? -1 : Math.floor((x - LABEL) / CELL);
    if (y < HEAD) {
      if (col >= 0 && runs[col]) location.hash = `#/dags/${enc(dagId)}/runs/${enc(runs[col].dag_run_id)}`;
      return;
    }
    const row = Math.floor((y - HEAD + scroller.scrollTop) / ROW);
    if (!rows[row]) return;
    focus = { row, col: col < runs.length ? col : -1 };
    if (col < 0) toggle(rows[row]); else open(rows[row], col);
    describe();
    draw();
  });
  canvas.addEventListener("keydown", (event) => {
    const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1], PageDown: [10, 0], PageUp: [-10, 0] };
    if (moves[event.key]) {
      event.preventDefault();
      const [dr, dc] = moves[event.key];
      focus.row = Math.max(0, Math.min(rows.length - 1, focus.row + dr));
      focus.col = Math.max(-1, Math.min(runs.length - 1, focus.col + dc));
      const top = focus.row * ROW;
      if (top < scroller.scrollTop) scroller.scrollTop = top;
      const room = scroller.clientHeight - HEAD - ROW;
      if (top > scroller.scrollTop + room) scroller.scrollTop = top - room;
      describe();
      draw();
    } else if (event.key === "Enter" && rows[focus.row]) {
      if (focus.col < 0) toggle(rows[focus.row]); else open(rows[focus.row], focus.col);
    } else if (event.key === " " && rows[focus.row]) {
      event.preventDefault();
      toggle(rows[focus.row]);
      describe();
    }
  });
  scroller.addEventListener("scroll", () => requestAnimationFrame(draw));

  const runList = h("ul", { class: "run-links", "aria-label": "Runs" });

  let pending = false;
  function redrawSoon() {
    // Many runs' pages arrive close together: one rebuild per frame.
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; rebuild(); });
  }

  async function refresh() {
    const answer = await api.get(`/dags/${enc(dagId)}/dagRuns`, { limit: RUNS, order_by: "-run_after" });
    runs = answer.data.dag_runs.slice().reverse();
    const stale = runs.filter((r) => !instances.has(r.dag_run_id) || !FINISHED.has(r.state) || answer.changed);
    if (answer.changed) {
      runList.replaceChildren(...runs.slice().reverse().map((r) => h("li", {},
        h("a", { href: `#/dags/${enc(dagId)}/runs/${enc(r.dag_run_id)}` }, r.dag_run_id),
        ` ${r.state} · ${r.run_type} · ${when(r.run_after)}`)));
      rebuild(); // the rows and column heads at once; cells fill in as runs arrive
      scroller.dataset.drawn = "true";
    }
    await Promise.all(stale.map(async (run) => {
      const { out, changed } = await allInstances(dagId, run.dag_run_id);
      if (changed || !instances.has(run.dag_run_id)) {
        instances.set(run.dag_run_id, out);
        redrawSoon();
      }
    }));
    scroller.dataset.loaded = "true";
  }

  mount(h("section", { "aria-labelledby": "grid-title" },
    h("h1", { id: "grid-title" }, `${dag.dag_display_name}`),
    h("p", {}, dag.description || "", " ",
      h("a", { class: "button", href: "#/dags" }, "All DAGs"), " ",
      may("user") ? h("a", { class: "button", href: `#/dags/${enc(dagId)}/trigger`, id: "trigger-link" }, "Trigger") : null, " ",
      h("a", { class: "button", href: `#/dags/${enc(dagId)}/backfill`, id: "backfill-link" }, "Backfills"), " ",
      h("a", { class: "button", href: `#/dags/${enc(dagId)}/versions`, id: "versions-link" }, "Versions")),
    h("p", { class: "muted" }, "Column heads: the run's state; its type (sch scheduled, man manual, bf backfill, evt event); its DAG version."),
    legend, scroller, status,
    h("details", {}, h("summary", {}, "Runs as a list"), runList)));
  return poll(refresh, 3000);
}
