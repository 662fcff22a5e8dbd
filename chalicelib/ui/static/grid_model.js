// The grid's rows and cells as plain data (no DOM), so the canvas only paints.

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

// Rows in display order: groups (from dotted task ids) then their tasks, depth-first.
export function buildRows(tasks, folded, unfolded, instances) {
  const rows = [];
  const seenGroups = new Set();
  const maxIndex = new Map();
  for (const tis of instances.values()) {
    for (const ti of tis) {
      if (ti.map_index >= 0) maxIndex.set(ti.task_id, Math.max(maxIndex.get(ti.task_id) ?? -1, ti.map_index));
    }
  }
  for (const task of tasks) {
    const parts = task.task_id.split(".");
    let hidden = false;
    for (let d = 1; d < parts.length; d++) {
      const group = parts.slice(0, d).join(".");
      if (hidden) break;
      if (!seenGroups.has(group)) {
        seenGroups.add(group);
        const members = tasks.filter((t) => t.task_id.startsWith(group + ".")).map((t) => t.task_id);
        rows.push({ kind: "group", id: group, label: parts[d - 1], depth: d - 1, members: new Set(members) });
      }
      if (folded.has(group)) hidden = true;
    }
    if (hidden) continue;
    const depth = parts.length - 1;
    if (task.is_mapped) {
      rows.push({ kind: "mapped", id: task.task_id, taskId: task.task_id, label: parts[depth], depth });
      if (unfolded.has(task.task_id)) {
        for (let i = 0; i <= (maxIndex.get(task.task_id) ?? -1); i++) {
          rows.push({ kind: "instance", id: `${task.task_id}[${i}]`, taskId: task.task_id, mapIndex: i, label: `[${i}]`, depth: depth + 1 });
        }
      }
    } else {
      rows.push({ kind: "task", id: task.task_id, taskId: task.task_id, label: parts[depth], depth });
    }
  }
  return rows;
}

// A row's cell in one run: its state, and counts per state for groups and mapped tasks.
export function cellOf(row, tis) {
  if (!tis) return { state: null };
  if (!row._index || row._index.source !== tis) {
    // cache per (row, run list) pair: the lists are replaced, never mutated
    row._index = { source: tis, cell: compute(row, tis) };
  }
  return row._index.cell;
}

function compute(row, tis) {
  if (row.kind === "task") {
    const ti = tis.byKey ? tis.byKey.get(row.id) : find(tis, row.id, -1);
    return ti ? { state: ti.state, try: ti.try_number } : { state: null };
  }
  if (row.kind === "instance") {
    const ti = find(tis, row.taskId, row.mapIndex);
    return ti ? { state: ti.state, try: ti.try_number } : { state: null };
  }
  const members = tis.filter((ti) => (row.kind === "group" ? row.members.has(ti.task_id) : ti.task_id === row.id));
  const counts = {};
  for (const ti of members) counts[ti.state || "no status"] = (counts[ti.state || "no status"] || 0) + 1;
  return { state: members.length ? worst(members.map((ti) => ti.state)) : null, counts };
}

function find(tis, taskId, mapIndex) {
  if (!tis.byKey) {
    tis.byKey = new Map();
    for (const ti of tis) tis.byKey.set(ti.map_index >= 0 ? `${ti.task_id}[${ti.map_index}]` : ti.task_id, ti);
  }
  return tis.byKey.get(mapIndex >= 0 ? `${taskId}[${mapIndex}]` : taskId);
}
