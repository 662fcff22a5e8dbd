// Admin: connections (never their secrets: the API does not send them), variables,
// pools with their slot use, API keys (admins) and the event log. Each section is
// shown only to a role that may read it, and reads one page.

import { api, may } from "./api.js";
import { h, mount, when, errorBox } from "./dom.js";

function table(id, headings, rows) {
  return h("table", { class: "table", id },
    h("thead", {}, h("tr", {}, headings.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: String(headings.length), class: "muted" }, "none"))));
}

const SECTIONS = [
  { id: "pools", title: "Pools", role: "viewer", path: "/pools", key: "pools",
    head: ["Pool", "Slots", "Running", "Open", "Description"],
    row: (p) => [p.name, p.slots < 0 ? "unlimited" : p.slots, p.running_slots, p.open_slots < 0 ? "unlimited" : p.open_slots, p.description || ""] },
  { id: "connections", title: "Connections", role: "op", path: "/connections", key: "connections",
    head: ["Connection", "Type", "Host", "Login", "Port"],
    row: (c) => [c.connection_id, c.conn_type, c.host || "", c.login || "", c.port ?? ""] },
  { id: "variables", title: "Variables", role: "op", path: "/variables", key: "variables",
    head: ["Key", "Value", "Description"],
    row: (v) => [v.key, v.value, v.description || ""] },
  { id: "keys", title: "API keys", role: "admin", path: "/slipstream/keys", key: "api_keys",
    head: ["Key id", "Name", "Role", "Created", "Expires", "Revoked"],
    row: (k) => [k.key_id, k.name || "", k.role, when(k.created_at), when(k.expires_at), when(k.revoked_at)] },
  { id: "events", title: "Event log (latest 50)", role: "viewer", path: "/eventLogs", key: "event_logs", query: { limit: 50, order_by: "-when" },
    head: ["When", "Event", "Owner", "DAG", "Run", "Task"],
    row: (e) => [when(e.when), e.event, e.owner || "", e.dag_id || "", e.run_id || "", e.task_id || ""] },
];

export async function adminView() {
  const sections = SECTIONS.filter((s) => may(s.role));
  const nodes = await Promise.all(sections.map(async (s) => {
    let content;
    try {
      const { data } = await api.get(s.path, s.query || { limit: 100 });
      content = table(`admin-${s.id}`, s.head, data[s.key].map((item) => h("tr", {}, s.row(item).map((cell) => h("td", {}, String(cell))))));
    } catch (e) {
      content = errorBox(e);
    }
    return h("section", { class: "card admin", "aria-labelledby": `h-${s.id}` }, h("h2", { id: `h-${s.id}` }, s.title), content);
  }));
  mount(h("div", {}, h("h1", {}, "Admin"), nodes));
}
