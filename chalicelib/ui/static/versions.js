// Versions: every deployed version of a DAG (git commit, deploy time) and what
// changed between two of them: tasks added, removed and changed (with the
// fields that differ), and the DAG-level fields that differ.

import { api, enc } from "./api.js";
import { h, mount, when, errorBox } from "./dom.js";

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

export function diffSpecs(older, newer) {
  const before = older.tasks || {};
  const after = newer.tasks || {};
  const added = Object.keys(after).filter((t) => !(t in before)).sort();
  const removed = Object.keys(before).filter((t) => !(t in after)).sort();
  const changed = Object.keys(after).filter((t) => t in before && !same(before[t], after[t])).sort()
    .map((t) => ({ task: t, fields: Object.keys({ ...before[t], ...after[t] }).filter((f) => !same(before[t][f], after[t][f])).sort() }));
  const dagFields = Object.keys({ ...older, ...newer })
    .filter((f) => f !== "tasks" && f !== "line" && !same(older[f], newer[f])).sort();
  return { added, removed, changed, dagFields };
}

export async function versionsView(dagId) {
  const { data } = await api.get(`/dags/${enc(dagId)}/dagVersions`, { limit: 100, order_by: "-version_number" });
  const versions = data.dag_versions;
  const numbers = versions.map((v) => v.version_number).sort((a, b) => a - b);
  const pick = (id, chosen) => h("select", { id }, numbers.map((n) => h("option", { value: String(n), selected: n === chosen }, `v${n}`)));
  const older = pick("v-older", numbers.length > 1 ? numbers[numbers.length - 2] : numbers[0]);
  const newer = pick("v-newer", numbers[numbers.length - 1]);
  const result = h("div", { id: "version-diff", "aria-live": "polite" });

  async function compare() {
    result.replaceChildren(h("p", { class: "muted" }, "Comparing…"));
    try {
      const [a, b] = await Promise.all([older.value, newer.value].map((n) =>
        api.get(`/slipstream/dags/${enc(dagId)}/dagVersions/${n}/spec`).then((r) => r.data.spec)));
      const d = diffSpecs(a, b);
      const list = (title, items) => h("div", {}, h("h3", {}, `${title} (${items.length})`),
        items.length ? h("ul", {}, items) : h("p", { class: "muted" }, "none"));
      result.replaceChildren(
        list("Tasks added", d.added.map((t) => h("li", {}, "+ ", t))),
        list("Tasks removed", d.removed.map((t) => h("li", {}, "− ", t))),
        list("Tasks changed", d.changed.map((c) => h("li", {}, "~ ", c.task, h("span", { class: "muted" }, `: ${c.fields.join(", ")}`)))),
        list("DAG settings changed", d.dagFields.map((f) => h("li", {}, f))));
    } catch (e) {
      result.replaceChildren(errorBox(e));
    }
  }

  mount(h("section", { "aria-labelledby": "versions-title" },
    h("h1", { id: "versions-title" }, `Versions of ${dagId}`),
    h("p", {}, h("a", { class: "button", href: `#/dags/${enc(dagId)}/grid` }, "Grid")),
    h("table", { class: "table", id: "versions-table" },
      h("thead", {}, h("tr", {}, ["Version", "Git commit", "Deployed (UTC)"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, versions.map((v) => h("tr", {},
        h("td", {}, `v${v.version_number}`), h("td", {}, h("code", {}, v.bundle_version || "–")), h("td", {}, when(v.created_at)))))),
    h("form", { class: "filters compare", onsubmit: (e) => { e.preventDefault(); compare(); } },
      h("label", { for: "v-older" }, "Compare"), older, h("label", { for: "v-newer" }, "with"), newer,
      h("button", { type: "submit", id: "v-compare" }, "Show changes")),
    result));
  if (numbers.length > 1) compare();
}
