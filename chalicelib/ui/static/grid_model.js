// The grid's rows and cells as plain data (no DOM), so the canvas only paints.
// The data is the compact answer of GET /api/v2/slipstream/dags/{id}/grid: per
// row one string with a letter per run (newest run first), counts per run for
// mapped tasks and folded groups. A cell is read from those strings when it is
// painted; nothing per cell is kept. The grid view asks for a window of rows at
// a time (windowRows below); the Graph view reads one answer whole (gridModel).

export const RUN_TYPES = { scheduled: "sch", manual: "man", backfill: "bf", asset_triggered: "evt", event: "evt" };

// Which state a folded group or a mapped task shows: the one that needs attention first.
const ORDER = ["failed", "upstream_failed", "up_for_retry", "running", "restarting", "deferred",
  "up_for_reschedule", "queued", "scheduled", "none", "removed", "skipped", "success"];

export function worst(states) {
  let best = null;
  for (const s of states) {
    const rank = ORDER.indexOf(s || "none");
    if (best === null || rank < ORDER.indexOf(best)) best = s || "none";
  }
  return best;
}

// The answer prepared for painting: runs oldest first (the columns), task index by id.
export function gridModel(answer) {
  const index = new Map(answer.task_ids.map((id, i) => [id, i]));
  return { ...answer, columns: answer.runs.slice().reverse(), index, n: answer.runs.length };
}

// --- Windows of rows --------------------------------------------------------
// The grid view reads the grid a window of rows at a time (task_offset/task_limit),
// so a 10,000-task DAG costs the rows in view. The server orders the rows (sorted
// task ids, a heading before each group's members, a folded group one row) and
// says each row's kind; these helpers turn a window's answer into rows to paint.

const KINDS = { t: "task", m: "mapped", g: "group", f: "folded" };

// The rows of one window's answer; `s` is a row's place among all the grid's rows.
export function windowRows(answer) {
  return answer.task_ids.map((id, i) => {
    const parts = id.split(".");
    const kind = KINDS[answer.kinds[i]] || "task";
    const row = { kind, id, taskId: id, s: answer.task_offset + i, label: parts[parts.length - 1], depth: parts.length - 1, text: answer.states[i] };
    if (kind === "mapped") {
      row.counts = answer.mapped[id].counts;
      row.instances = answer.mapped[id].instances || null;
    }
    if (kind === "folded") row.counts = answer.groups[id].counts;
    return row;
  });
}

// An unfolded mapped row's instances, one row each (from an answer with expand=<id>).
export function instanceRows(row) {
  return (row.instances || []).map((text, i) => ({
    kind: "instance", id: `${row.id}[${i}]`, taskId: row.id, s: row.s, mapIndex: i, text, label: `[${i}]`, depth: row.depth + 1,
  }));
}

// The rows to paint: every row of the grid (`total`), loaded ones from `blocks`
// (block number -> rows of `size`), the others as "pending" placeholders, each
// unfolded mapped row followed by its instances.
export function displayRows(total, blocks, size, unfolded) {
  const rows = [];
  for (let s = 0; s < total; s++) {
    const block = blocks.get(Math.floor(s / size));
    const row = block && block[s % size];
    if (!row) { rows.push({ kind: "pending", id: "", s, label: "…", depth: 0 }); continue; }
    rows.push(row);
    if (row.kind === "mapped" && unfolded.has(row.id)) rows.push(...instanceRows(row));
  }
  return rows;
}

// A row's cell in column `col` of `n` runs (oldest left): its state (null: nothing
// to paint, e.g. not in that run's DAG version or a group heading) and, for mapped
// tasks and folded groups, how many instances are in each state.
export function cellAt(row, col, n, codes) {
  if (col < 0 || col >= n || !row.text) return { state: null };
  const letter = row.text.charAt(n - 1 - col);
  const state = !letter || letter === "." ? null : codes[letter] || "none";
  if (row.kind === "mapped" || row.kind === "folded") return { state, counts: row.counts[n - 1 - col] || {} };
  return { state };
}
