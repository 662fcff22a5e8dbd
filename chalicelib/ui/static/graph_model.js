// The Graph view's model as plain data (no DOM): tasks folded into their
// collapsed groups, edges between the shown nodes, and a layered left-to-right
// layout (each node one column right of its furthest upstream node, nodes in a
// column ordered by where their upstream nodes sit), so 200 tasks read as a
// few columns instead of a tangle.

import { worst } from "./grid_model.js";

// The node a task is shown as: itself, or its outermost collapsed group.
export function nodeOf(taskId, expanded) {
  const parts = taskId.split(".");
  for (let d = 1; d < parts.length; d++) {
    const group = parts.slice(0, d).join(".");
    if (!expanded.has(group)) return group;
  }
  return taskId;
}

// tasks: [{task_id, downstream_task_ids, is_mapped}]; expanded: group ids shown open.
export function buildGraph(tasks, expanded) {
  const nodes = new Map(); // id -> {id, kind, members: [task ids], mapped}
  for (const task of tasks) {
    const id = nodeOf(task.task_id, expanded);
    const group = id !== task.task_id;
    if (!nodes.has(id)) nodes.set(id, { id, kind: group ? "group" : "task", members: [], mapped: !!task.is_mapped && !group });
    nodes.get(id).members.push(task.task_id);
  }
  const edges = new Map(); // "a>b" -> [a, b]
  for (const task of tasks) {
    const from = nodeOf(task.task_id, expanded);
    for (const down of task.downstream_task_ids || []) {
      const to = nodeOf(down, expanded);
      if (from !== to && nodes.has(to)) edges.set(`${from}>${to}`, [from, to]);
    }
  }
  return { nodes: [...nodes.values()], edges: [...edges.values()] };
}

// Columns by longest path from the roots (Kahn's order); a cycle made by folding
// groups leaves its nodes in one last column rather than looping.
export function layout(graph) {
  const ins = new Map(graph.nodes.map((n) => [n.id, 0]));
  const outs = new Map(graph.nodes.map((n) => [n.id, []]));
  const ups = new Map(graph.nodes.map((n) => [n.id, []]));
  for (const [a, b] of graph.edges) {
    ins.set(b, ins.get(b) + 1);
    outs.get(a).push(b);
    ups.get(b).push(a);
  }
  const column = new Map();
  const queue = graph.nodes.filter((n) => ins.get(n.id) === 0).map((n) => n.id);
  for (const id of queue) column.set(id, 0);
  for (let i = 0; i < queue.length; i++) {
    const id = queue[i];
    for (const down of outs.get(id)) {
      column.set(down, Math.max(column.get(down) ?? 0, column.get(id) + 1));
      ins.set(down, ins.get(down) - 1);
      if (ins.get(down) === 0) queue.push(down);
    }
  }
  const last = Math.max(0, ...column.values()) + 1;
  for (const n of graph.nodes) if (!column.has(n.id) || ins.get(n.id) > 0) column.set(n.id, last);
  const columns = [];
  for (const n of graph.nodes) (columns[column.get(n.id)] ||= []).push(n.id);
  const row = new Map();
  columns.forEach((ids, c) => {
    const place = (id) => {
      const rows = ups.get(id).map((u) => row.get(u)).filter((r) => r !== undefined);
      return rows.length ? rows.reduce((a, b) => a + b, 0) / rows.length : 0;
    };
    if (c > 0) ids.sort((a, b) => place(a) - place(b) || (a < b ? -1 : 1));
    ids.forEach((id, r) => row.set(id, r));
  });
  return { columns: columns.filter(Boolean), column, row };
}

// A node's state in one run of the grid answer: a task's letter, a group's worst member.
export function nodeState(model, node, col) {
  const states = [];
  for (const taskId of node.members) {
    const t = model.index.get(taskId);
    if (t === undefined) continue;
    const letter = model.states[t].charAt(model.n - 1 - col);
    if (letter && letter !== ".") states.push(model.codes[letter] || "none");
  }
  return states.length ? worst(states) : null;
}
