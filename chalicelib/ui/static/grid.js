// The grid: runs (columns, oldest left) x tasks (rows), drawn on a canvas that only
// paints the rows in view, so 10,000 tasks cost no more DOM than 10. It reads the
// grid a window of rows at a time (GET /slipstream/dags/{id}/grid with task_offset
// and task_limit: a letter per row and run): the windows in view come first, the
// next one when the user scrolls, each polled with its own ETag. Rows not read yet
// show "…" until their window arrives. Task groups (ids "group.task") fold into one
// row (the server summarises it); a mapped task is one row with counts per state
// and unfolds to its instances. Keyboard: arrows move, Enter opens, Space folds.

import { api, enc, may, poll } from "./api.js";
import { h, mount, announce, when } from "./dom.js";
import { stateOf } from "./states.js";
import { cellAt, displayRows, windowRows, RUN_TYPES } from "./grid_model.js";

const ROW = 22;
const CELL = 26;
const LABEL = 300;
const HEAD = 64;
const RUNS = 25;
const BLOCK = 40; // rows per window: a screenful and a half, a few hundred instances a run

export async function gridView(dagId) {
  const url = `/slipstream/dags/${enc(dagId)}/grid`;
  const windowQuery = (block) => {
    const query = new URLSearchParams({ limit: RUNS, offset, task_offset: block * BLOCK, task_limit: BLOCK });
    for (const id of unfolded) query.append("expand", id);
    for (const id of folded) query.append("folded", id);
    return query;
  };
  // The first window is asked for with the DAG's details, not after them.
  let early = api.get(url, new URLSearchParams({ limit: RUNS, offset: 0, task_offset: 0, task_limit: BLOCK }));
  early.catch(() => {}); // a failure is reported when load() awaits it
  const { data: dag } = await api.get(`/dags/${enc(dagId)}`);
  const folded = new Set();
  const unfolded = new Set();
  const blocks = new Map(); // window number -> its rows
  const loading = new Set();
  let generation = 0; // bumped when folds, unfolds or the page of runs change: older answers are dropped
  let total = 0;
  let codes = {};
  let runs = [];
  let runsKey = null;
  let offset = 0;
  let rows = [];
  let focus = { row: 0, col: -1 };
  let redescribe = false; // a fold changed the focused row: say what it is once it is read

  const canvas = h("canvas", { tabindex: 0, role: "img", class: "grid-canvas",
    "aria-label": `Grid of ${dagId}: tasks by runs. Arrow keys move between cells, Enter opens the run, Space folds a group or mapped task.` });
  const spacer = h("div", { class: "grid-spacer" });
  const scroller = h("div", { class: "grid-scroll", id: "grid" }, canvas, spacer);
  const status = h("p", { id: "grid-cell", class: "cell-status", "aria-live": "polite" }, "Select a cell to see its state.");
  const legend = h("ul", { class: "legend", "aria-label": "Legend" },
    Object.entries({ success: 1, failed: 1, running: 1, queued: 1, scheduled: 1, up_for_retry: 1, upstream_failed: 1, skipped: 1, deferred: 1, none: 1 })
      .map(([name]) => { const s = stateOf(name); return h("li", {}, h("span", { class: "chip", style: `background:${s.color};color:${s.ink}` }, s.letter), " ", name === "none" ? "no status" : name.replace(/_/g, " ")); }));

  const n = () => runs.length;
  const cell = (r, c) => cellAt(r, c, n(), codes);

  function draw() {
    const width = LABEL + Math.max(n(), 1) * CELL + 20;
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
      ctx.fillStyle = r.kind === "pending" ? "#888" : "#1a1a1a";
      const mark = r.kind === "group" ? "▾ " : r.kind === "folded" ? "▸ " : r.kind === "mapped" ? (unfolded.has(r.id) ? "▾ " : "▸ ") : "";
      const label = mark + r.label + (r.kind === "mapped" ? " [ ]" : "");
      ctx.fillText(label.length > 40 ? label.slice(0, 39) + "…" : label, 6 + r.depth * 14, y + ROW / 2);
      for (let c = 0; c < n(); c++) {
        const { state } = cell(r, c);
        if (state === null) continue; // not read yet, a heading, or not in this run's DAG version
        const s = stateOf(state);
        const x = LABEL + c * CELL;
        ctx.fillStyle = s.color;
        ctx.fillRect(x + 2, y + 2, CELL - 4, ROW - 4);
        if (i === focus.row && c === focus.col) { ctx.strokeStyle = "#000"; ctx.lineWidth = 2; ctx.strokeRect(x + 1, y + 1, CELL - 2, ROW - 2); }
        ctx.fillStyle = s.ink;
        ctx.textAlign = "center";
        ctx.fillText(s.letter, x + CELL / 2, y + ROW / 2 + 1);
        ctx.textAlign = "left";
      }
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
      const version = run.version_number;
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
    const kind = { group: "Group", folded: "Folded group", mapped: "Mapped task", instance: "Mapped instance", pending: "Row" }[r.kind] || "Task";
    if (r.kind === "pending") {
      status.textContent = "Loading this row…";
    } else if (focus.col < 0 || r.kind === "group") {
      status.textContent = `${kind} ${r.id}${r.kind === "group" ? " (Space folds it into one row with its summary)" : ""}`;
    } else {
      const run = runs[focus.col];
      const c = cell(r, focus.col);
      const name = (state) => (state === "none" ? "no status" : state.replace(/_/g, " "));
      const entries = Object.entries(c.counts || {});
      const counts = entries.length ? " (" + entries.map(([k, v]) => `${v} ${name(k)}`).join(", ") + ")" : "";
      const state = c.state === null ? "not in this run's version" : name(c.state);
      status.textContent = `${r.id} in ${run.dag_run_id} (${run.run_type}): ${state}${counts}`;
    }
    announce(status.textContent);
  }

  function rebuild() {
    rows = displayRows(total, blocks, BLOCK, unfolded);
    scroller.dataset.rows = String(rows.length);
    focus.row = Math.min(focus.row, Math.max(rows.length - 1, 0));
    draw();
  }

  // The windows the screen shows, by number (and, with `ahead`, the next one below).
  function wanted(ahead = false) {
    const first = Math.floor(scroller.scrollTop / ROW);
    const last = first + Math.ceil((scroller.clientHeight || 600) / ROW);
    const want = [];
    const add = (b) => { if (b >= 0 && b * BLOCK < Math.max(total, 1) && !want.includes(b)) want.push(b); };
    if (!rows.length) add(0);
    for (let i = first; i <= Math.min(last, rows.length - 1); i++) add(Math.floor(rows[i].s / BLOCK));
    if (ahead && rows.length) add(Math.floor(rows[Math.min(last, rows.length - 1)].s / BLOCK) + 1);
    return want;
  }

  function showRuns(answer) {
    runs = answer.runs.slice().reverse();
    codes = answer.codes;
    focus.col = Math.min(focus.col, runs.length - 1);
    runList.replaceChildren(...answer.runs.map((r) => h("li", {},
      h("a", { href: `#/dags/${enc(dagId)}/runs/${enc(r.dag_run_id)}` }, r.dag_run_id),
      ` ${r.state} · ${r.run_type} · ${when(r.run_after)}`)));
    const count = answer.total_entries;
    shown.textContent = count ? ` runs ${offset + 1}–${offset + runs.length} of ${count}, newest first` : " no runs yet";
    older.disabled = offset + RUNS >= count;
    newer.disabled = offset === 0;
  }

  async function load(block) {
    const asked = generation;
    const ready = block === 0 && asked === 0 && early; // the first window, already on its way
    early = null;
    loading.add(block);
    try {
      const answer = await (ready || api.get(url, windowQuery(block)));
      if (asked !== generation || (!answer.changed && blocks.has(block))) return; // stale, or a 304
      const key = answer.data.runs.map((r) => r.dag_run_id).join(" ");
      if (key !== runsKey) { // new runs shifted the columns: other windows are re-read as they show
        runsKey = key;
        blocks.clear();
      }
      showRuns(answer.data); // the runs' own states and ends move too
      total = answer.data.total_rows;
      blocks.set(block, windowRows(answer.data));
      rebuild();
      if (redescribe && rows[focus.row] && rows[focus.row].kind !== "pending") { redescribe = false; describe(); }
      scroller.dataset.drawn = "true";
    } finally {
      loading.delete(block);
    }
  }

  // Reads the windows in view, top first (each a 304 when unchanged; the first
  // answer tells how many rows there are, so a second round reads the rest in
  // view), marks the grid loaded, then reads the window below ahead of a scroll.
  async function refresh() {
    for (const block of wanted()) await load(block);
    for (const block of wanted()) if (!blocks.has(block)) await load(block);
    if (wanted().every((b) => blocks.has(b))) scroller.dataset.loaded = "true";
    for (const block of wanted(true)) if (!blocks.has(block)) await load(block);
  }

  function reset() {
    generation += 1;
    blocks.clear();
    runsKey = null;
    delete scroller.dataset.loaded;
    refresh().catch((e) => console.warn(e));
  }

  function toggle(r) {
    if (r.kind === "group") folded.add(r.id);
    else if (r.kind === "folded") folded.delete(r.id);
    else if (r.kind === "mapped") unfolded.has(r.id) ? unfolded.delete(r.id) : unfolded.add(r.id);
    else return;
    redescribe = true;
    reset(); // the rows change: read them again (a mapped task's instances come with expand=...)
  }

  function open(r, col) {
    const run = runs[col];
    if (!run || r.kind === "pending" || r.kind === "group" || r.kind === "folded") return;
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
  // Scrolling paints at once (unread rows as "…") and reads the windows that came into view.
  let pending = false;
  scroller.addEventListener("scroll", () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      draw();
      for (const block of wanted(true)) if (!blocks.has(block) && !loading.has(block)) load(block).catch((e) => console.warn(e));
    });
  });

  const runList = h("ul", { class: "run-links", "aria-label": "Runs" });
  const older = h("button", { type: "button", id: "grid-older" }, "Older runs");
  const newer = h("button", { type: "button", id: "grid-newer", disabled: true }, "Newer runs");
  const shown = h("span", { id: "grid-range", class: "muted" }, "");
  older.addEventListener("click", () => { offset += RUNS; reset(); });
  newer.addEventListener("click", () => { offset = Math.max(0, offset - RUNS); reset(); });

  mount(h("section", { "aria-labelledby": "grid-title" },
    h("h1", { id: "grid-title" }, `${dag.dag_display_name}`),
    h("p", {}, dag.description || "", " ",
      h("a", { class: "button", href: "#/dags" }, "All DAGs"), " ",
      may("user") ? h("a", { class: "button", href: `#/dags/${enc(dagId)}/trigger`, id: "trigger-link" }, "Trigger") : null, " ",
      h("a", { class: "button", href: `#/dags/${enc(dagId)}/backfill`, id: "backfill-link" }, "Backfills"), " ",
      h("a", { class: "button", href: `#/dags/${enc(dagId)}/versions`, id: "versions-link" }, "Versions"), " ",
      h("a", { class: "button", href: `#/dags/${enc(dagId)}/graph`, id: "graph-link" }, "Graph")),
    h("p", { class: "muted" }, "Column heads: the run's state; its type (sch scheduled, man manual, bf backfill, evt event); its DAG version. A group folds into one row that sums up its tasks."),
    legend, h("p", {}, newer, " ", older, shown), scroller, status,
    h("details", {}, h("summary", {}, "Runs as a list"), runList)));
  return poll(refresh, 3000);
}
