// Admin: pools with their slot use, connections (never their secrets: the API
// does not send a password, and hides an extra's sensitive values), variables,
// API keys (admins) and the event log. Each section is shown only to a role that
// may read it and reads one page; ops (admins for keys) also get its editing
// controls, which call the same REST routes a script would.

import { api, enc, may } from "./api.js";
import { h, mount, when, errorBox, announce } from "./dom.js";
import { editorForm, deleteControl } from "./admin_forms.js";

function table(id, headings, rows) {
  return h("table", { class: "table", id },
    h("thead", {}, h("tr", {}, headings.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: String(headings.length), class: "muted" }, "none"))));
}

const text = (name, label, extra = {}) => ({ name, label, value: (item) => item[name], ...extra });
const ROLES = ["viewer", "user", "op", "admin"];

const SECTIONS = [
  { id: "pools", title: "Pools", role: "viewer", path: "/pools", key: "pools",
    head: ["Pool", "Slots", "Running", "Open", "Description"],
    row: (p) => [p.name, p.slots < 0 ? "unlimited" : p.slots, p.running_slots, p.open_slots < 0 ? "unlimited" : p.open_slots, p.description || ""],
    editRole: "op", noun: "pool", name: (p) => p.name,
    fields: [
      text("name", "Name", { required: true, newOnly: true, hint: "Letters, digits, _ . and -" }),
      text("slots", "Slots", { type: "number", required: true, min: -1, initial: 1, hint: "-1 means unlimited" }),
      text("description", "Description"),
    ],
    save: (v, item) => item
      ? api.patch(`/pools/${enc(item.name)}`, { slots: v.slots, description: v.description }, { update_mask: ["slots", "description"] })
      : api.post("/pools", v),
    remove: (p) => api.delete(`/pools/${enc(p.name)}`),
    removable: (p) => p.name !== "default_pool" },
  { id: "connections", title: "Connections", role: "op", path: "/connections", key: "connections",
    head: ["Connection", "Type", "Host", "Login", "Port", "Password", "Extra"],
    row: (c) => [c.connection_id, c.conn_type, c.host || "", c.login || "", c.port ?? "", c.password ? "set" : "", c.extra ? "set" : ""],
    editRole: "op", noun: "connection", name: (c) => c.connection_id,
    fields: [
      text("connection_id", "Connection id", { required: true, newOnly: true }),
      text("conn_type", "Type", { required: true, hint: "e.g. postgres, http, aws" }),
      text("description", "Description"),
      text("host", "Host"), text("login", "Login"), text("schema", "Schema"),
      text("port", "Port", { type: "number", min: 0 }),
      text("password", "Password", { type: "password", secret: true, isSet: (c) => !!c.password }),
      text("extra", "Extra (JSON)", { type: "textarea", secret: true, isSet: (c) => !!c.extra }),
    ],
    save: (v, item) => {
      if (!item) return api.post("/connections", v);
      // Only what the form shows is changed; the password and extra only when typed.
      const mask = ["conn_type", "description", "host", "login", "schema", "port"].concat(
        ["password", "extra"].filter((f) => v[f] !== undefined));
      return api.patch(`/connections/${enc(item.connection_id)}`, { ...v, connection_id: item.connection_id }, { update_mask: mask });
    },
    remove: (c) => api.delete(`/connections/${enc(c.connection_id)}`) },
  { id: "variables", title: "Variables", role: "op", path: "/variables", key: "variables",
    head: ["Key", "Value", "Description"],
    row: (v) => [v.key, v.value, v.description || ""],
    editRole: "op", noun: "variable", name: (v) => v.key,
    fields: [
      text("key", "Key", { required: true, newOnly: true }),
      text("value", "Value", { type: "textarea", required: true }),
      text("description", "Description"),
    ],
    save: (v, item) => item
      ? api.patch(`/variables/${enc(item.key)}`, { ...v, key: item.key, value: v.value ?? "" }, { update_mask: ["value", "description"] })
      : api.post("/variables", { ...v, value: v.value ?? "" }),
    remove: (v) => api.delete(`/variables/${enc(v.key)}`) },
  { id: "keys", title: "API keys", role: "admin", path: "/slipstream/keys", key: "api_keys",
    head: ["Key id", "Name", "Role", "Created", "Expires", "Revoked"],
    row: (k) => [k.key_id, k.name || "", k.role, when(k.created_at), when(k.expires_at), when(k.revoked_at)],
    editRole: "admin", noun: "API key", name: (k) => k.key_id, createOnly: true, removeVerb: "revoke",
    fields: [
      text("name", "Name", { hint: "What the key is for" }),
      text("role", "Role", { type: "select", options: ROLES, initial: "viewer" }),
      text("expires_at", "Expires at (UTC, optional)", { placeholder: "2027-01-31T00:00:00Z" }),
    ],
    save: (v) => api.post("/slipstream/keys", v),
    remove: (k) => api.delete(`/slipstream/keys/${enc(k.key_id)}`),
    removable: (k) => !k.revoked_at },
  { id: "events", title: "Event log (latest 50)", role: "viewer", path: "/eventLogs", key: "event_logs", query: { limit: 50, order_by: "-when" },
    head: ["When", "Event", "Owner", "DAG", "Run", "Task"],
    row: (e) => [when(e.when), e.event, e.owner || "", e.dag_id || "", e.run_id || "", e.task_id || ""] },
];

// A new key is shown once, right after it is made: the API never answers it again.
function newKeyNotice(created) {
  return h("div", { class: "card notice", id: "new-key", role: "status" },
    h("p", {}, `Key ${created.key_id} (${created.role}) created. Copy it now: it is not shown again.`),
    h("code", { class: "values", id: "new-key-text" }, created.api_key));
}

async function sectionNode(s) {
  const editable = s.editRole && may(s.editRole);
  const body = h("div", {});
  const slot = h("div", {});
  const node = h("section", { class: "card admin", id: `section-${s.id}`, "aria-labelledby": `h-${s.id}` },
    h("h2", { id: `h-${s.id}` }, s.title), body, slot);

  async function load(notice) {
    try {
      const { data } = await api.get(s.path, s.query || { limit: 100 });
      const items = data[s.key];
      const head = editable ? [...s.head, "Actions"] : s.head;
      body.replaceChildren(table(`admin-${s.id}`, head, items.map((item) => h("tr", { "data-id": s.name ? s.name(item) : null },
        s.row(item).map((cell) => h("td", {}, String(cell))),
        editable ? h("td", { class: "nowrap" }, actions(item)) : null))));
    } catch (e) {
      body.replaceChildren(errorBox(e));
    }
    slot.replaceChildren(notice || "", editable ? h("button", { type: "button", id: `${s.id}-new`, onclick: () => open(null) }, `New ${s.noun}…`) : "");
  }

  function actions(item) {
    return [
      s.createOnly ? null : h("button", { type: "button", "aria-label": `Edit ${s.noun} ${s.name(item)}`, onclick: () => open(item) }, "Edit"),
      " ",
      !s.removable || s.removable(item) ? deleteControl(s, item, () => load()) : null,
    ];
  }

  function open(item) {
    const form = editorForm(s, item, {
      onSaved: (answer) => load(s.id === "keys" ? newKeyNotice(answer.data) : null),
      onCancel: () => load(),
    });
    slot.replaceChildren(form);
    form.querySelector("input, select, textarea").focus();
    announce(item ? `Editing ${s.noun} ${s.name(item)}` : `New ${s.noun}`);
  }

  await load();
  return node;
}

export async function adminView() {
  const nodes = await Promise.all(SECTIONS.filter((s) => may(s.role)).map(sectionNode));
  mount(h("div", {}, h("h1", {}, "Admin"), nodes));
}
