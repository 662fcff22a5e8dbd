// The grid's rows and cells as plain data (no DOM), so the canvas only paints.
// The data is the compact answer of GET /api/v2/slipstream/dags/{id}/grid: per
// task one string with a letter per run (newest run first), counts per run for
// mapped tasks. A cell is read from those strings when it is painted; nothing
// per cell is kept, so 10,000 tasks over 25 runs cost 10,000 short strings.

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

// The state name of the letter for task index `t` in column `col` (null: not in that run's version).
function stateAt(model, text, col) {
  const letter = text.charAt(model.n - 1 - col);
  if (!letter || letter === ".") return null;
  return model.codes[letter] || "none";
}

// Rows in display order: groups (from dotted task ids) then their tasks, depth-first.
// Group members are collected in one pass, so 10,000 tasks in 100 groups is 10,000 steps.
export function buildRows(model, folded, unfolded) {
  const rows = [];
  const groups = new Map();
  for (const taskId of model.task_ids) {
    const parts = taskId.split(".");
    let hidden = false;
    for (let d = 1; d < parts.length; d++) {
      const group = parts.slice(0, d).join(".");
      let row = groups.get(group);
      if (!row) {
        row = { kind: "group", id: group, label: parts[d - 1], depth: d - 1, members: [] };
        groups.set(group, row);
        if (!hidden) rows.push(row);
      }
      row.members.push(model.index.get(taskId));
      if (folded.has(group)) hidden = true;
    }
    if (hidden) continue;
    const depth = parts.length - 1;
    const t = model.index.get(taskId);
    const mapped = model.mapped[taskId];
    if (mapped) {
      rows.push({ kind: "mapped", id: taskId, taskId, t, label: parts[depth], depth });
      if (unfolded.has(taskId)) {
        (mapped.instances || []).forEach((text, i) => {
          rows.push({ kind: "instance", id: `${taskId}[${i}]`, taskId, mapIndex: i, text, label: `[${i}]`, depth: depth + 1 });
        });
      }
    } else {
      rows.push({ kind: "task", id: taskId, taskId, t, label: parts[depth], depth });
    }
  }
  return rows;
}

// A row's cell in one column: its state, and counts per state for groups and mapped tasks.
export function cellOf(model, row, col) {
  if (col < 0 || col >= model.n) return { state: null };
  if (row.kind === "task") return { state: stateAt(model, model.states[row.t], col) };
  if (row.kind === "instance") return { state: stateAt(model, row.text, col) };
  if (row.kind === "mapped") {
    const counts = model.mapped[row.taskId].counts[model.n - 1 - col] || {};
    return { state: stateAt(model, model.states[row.t], col), counts };
  }
  const counts = {};
  for (const t of row.members) {
    const state = stateAt(model, model.states[t], col);
    if (state === null) continue;
    const mapped = model.mapped[model.task_ids[t]];
    const per = mapped && mapped.counts[model.n - 1 - col];
    if (per && Object.keys(per).length) {
      for (const [name, k] of Object.entries(per)) counts[name] = (counts[name] || 0) + k;
    } else {
      counts[state] = (counts[state] || 0) + 1;
    }
  }
  const names = Object.keys(counts);
  return { state: names.length ? worst(names) : null, counts };
}
