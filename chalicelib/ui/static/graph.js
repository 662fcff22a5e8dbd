// The Graph view: the DAG's structure left to right, task groups collapsed
// (click or Enter opens one), each node coloured and lettered by its state in
// the chosen run. Structure from GET /dags/{id}/tasks, states from the compact
// grid answer (one letter per task and run), both polled with ETags.

import { api, enc, poll } from "./api.js";
import { h, mount, announce } from "./dom.js";
import { stateOf } from "./states.js";
import { gridModel } from "./grid_model.js";
import { buildGraph, layout, nodeState } from "./graph_model.js";

const W = 190;
const H = 30;
const GAP_X = 70;
const GAP_Y = 14;
const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

export async function graphView(dagId, runId) {
  // The states are asked for with the structure, not after it: one round trip, not two.
  const gridPath = `/slipstream/dags/${enc(dagId)}/grid`;
  let firstStates = api.get(gridPath, { limit: 25 });
  firstStates.catch(() => {}); // a failure is shown when refresh() awaits it
  const [{ data: dag }, { data: tasks }] = await Promise.all([
    api.get(`/dags/${enc(dagId)}`),
    api.get(`/dags/${enc(dagId)}/tasks`),
  ]);
  const expanded = new Set();
  let model = gridModel({ runs: [], task_ids: [], states: [], mapped: {}, codes: {}, total_entries: 0 });
  let chosen = runId || null;
  const picker = h("select", { id: "graph-run" });
  const picture = h("div", { class: "graph-scroll", id: "graph" });
  const status = h("p", { id: "graph-node", class: "cell-status", "aria-live": "polite" }, "Select a node to see its state.");

  function column() {
    const i = model.columns.findIndex((r) => r.dag_run_id === chosen);
    return i >= 0 ? i : model.n - 1; // the newest run when none is chosen
  }

  function describe(node) {
    const col = column();
    const run = model.columns[col];
    const state = run ? nodeState(model, node, col) : null;
    const what = node.kind === "group" ? `Group ${node.id} (${node.members.length} tasks)` : `${node.mapped ? "Mapped task" : "Task"} ${node.id}`;
    status.textContent = `${what}: ${run ? `${state ? state.replace(/_/g, " ") : "no status"} in ${run.dag_run_id}` : "no runs yet"}`;
    announce(status.textContent);
  }

  function activate(node) {
    if (node.kind === "group") {
      expanded.has(node.id) ? expanded.delete(node.id) : expanded.add(node.id);
      draw();
      return;
    }
    const run = model.columns[column()];
    if (run) location.hash = `#/dags/${enc(dagId)}/runs/${enc(run.dag_run_id)}?task=${enc(node.id)}`;
  }

  function draw() {
    const graph = buildGraph(tasks.tasks, expanded);
    const place = layout(graph);
    const height = Math.max(...place.columns.map((c) => c.length), 1) * (H + GAP_Y) + GAP_Y;
    const width = place.columns.length * (W + GAP_X) + GAP_X;
    const at = (id) => ({ x: GAP_X / 2 + place.column.get(id) * (W + GAP_X), y: GAP_Y + place.row.get(id) * (H + GAP_Y) });
    const col = column();
    const lines = graph.edges.map(([a, b]) => {
      const p = at(a);
      const q = at(b);
      const x1 = p.x + W, y1 = p.y + H / 2, x2 = q.x, y2 = q.y + H / 2;
      return svg("path", { d: `M${x1},${y1} C${x1 + GAP_X / 2},${y1} ${x2 - GAP_X / 2},${y2} ${x2},${y2}`, class: "edge", "marker-end": "url(#arrow)" });
    });
    const boxes = graph.nodes.map((node) => {
      const { x, y } = at(node.id);
      const state = model.n ? nodeState(model, node, col) : null;
      const s = stateOf(state);
      const open = node.kind === "group" ? "▸ " : "";
      const label = open + node.id + (node.mapped ? " [ ]" : "") + (node.kind === "group" ? ` (${node.members.length})` : "");
      const g = svg("g", { class: `node ${node.kind}`, tabindex: 0, role: "button", "data-node": node.id,
        "aria-label": `${node.kind === "group" ? "group" : "task"} ${node.id}, ${state ? state.replace(/_/g, " ") : "no status"}` },
      svg("rect", { x, y, width: W, height: H, rx: node.kind === "group" ? 8 : 3, fill: "#fff", stroke: s.color, "stroke-width": 3 }),
      svg("rect", { x: x + 3, y: y + 3, width: 22, height: H - 6, fill: s.color }),
      svg("text", { x: x + 14, y: y + H / 2 + 4, "text-anchor": "middle", fill: s.ink }, s.letter),
      svg("text", { x: x + 32, y: y + H / 2 + 4, fill: "#1a1a1a" }, label.length > 24 ? label.slice(0, 23) + "…" : label));
      g.addEventListener("click", () => { describe(node); activate(node); });
      g.addEventListener("focus", () => describe(node));
      g.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); activate(node); }
      });
      return g;
    });
    const defs = svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto" },
      svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#777" })));
    picture.replaceChildren(svg("svg", { width, height, role: "group", "aria-label": `Graph of ${dagId}: ${graph.nodes.length} nodes` }, defs, ...lines, ...boxes));
    picture.dataset.nodes = String(graph.nodes.length);
    picture.dataset.drawn = "true";
  }

  async function refresh() {
    const asked = firstStates || api.get(gridPath, { limit: 25 });
    firstStates = null;
    const answer = await asked;
    if (!answer.changed && picture.dataset.drawn) return;
    model = gridModel(answer.data);
    picker.replaceChildren(...answer.data.runs.map((r) => h("option", { value: r.dag_run_id, selected: r.dag_run_id === chosen }, `${r.dag_run_id} (${r.state})`)));
    if (!chosen && model.n) chosen = model.columns[model.n - 1].dag_run_id;
    draw();
  }
  picker.addEventListener("change", () => { chosen = picker.value; draw(); });

  mount(h("section", { "aria-labelledby": "graph-title" },
    h("h1", { id: "graph-title" }, `${dag.dag_display_name}: graph`),
    h("p", {},
      h("a", { class: "button", href: "#/dags" }, "All DAGs"), " ",
      h("a", { class: "button", href: `#/dags/${enc(dagId)}/grid`, id: "grid-link" }, "Grid"), " ",
      h("label", { for: "graph-run" }, "Coloured by run "), picker),
    h("p", { class: "muted" }, "Groups are collapsed: click one (or Enter) to open it. A task opens its run detail."),
    picture, status));
  return poll(refresh, 3000);
}
