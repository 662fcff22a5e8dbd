// Trigger a run: a form generated from the DAG's params (each a JSON schema:
// type, enum, default, description, bounds) and the raw conf as JSON beside it.
// Both are validated here before submit; the API validates again.

import { api, enc } from "./api.js";
import { h, mount, errorBox } from "./dom.js";

function typeOf(param) {
  const schema = param.schema || {};
  let type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  if (!type) {
    const v = param.value;
    type = typeof v === "number" ? (Number.isInteger(v) ? "integer" : "number")
      : typeof v === "boolean" ? "boolean" : Array.isArray(v) ? "array"
      : v && typeof v === "object" ? "object" : "string";
  }
  return type;
}

export function field(name, param) {
  const schema = param.schema || {};
  const type = typeOf(param);
  const id = `param-${name}`;
  const help = param.description || schema.description;
  const helpId = help ? `${id}-help` : undefined;
  const errId = `${id}-error`;
  let input;
  if (Array.isArray(schema.enum)) {
    input = h("select", { id }, schema.enum.map((v) => h("option", { value: JSON.stringify(v), selected: v === param.value }, String(v))));
  } else if (type === "boolean") {
    input = h("input", { id, type: "checkbox", checked: !!param.value });
  } else if (type === "integer" || type === "number") {
    input = h("input", { id, type: "number", step: type === "integer" ? "1" : "any", value: param.value ?? "",
      min: schema.minimum, max: schema.maximum });
  } else if (type === "array" || type === "object") {
    input = h("textarea", { id, rows: 3 }, JSON.stringify(param.value ?? (type === "array" ? [] : {}), null, 1));
  } else {
    input = h("input", { id, type: "text", value: param.value ?? "" });
  }
  input.setAttribute("aria-describedby", [helpId, errId].filter(Boolean).join(" "));
  const error = h("span", { id: errId, class: "field-error" });
  const read = () => {
    error.textContent = "";
    input.removeAttribute("aria-invalid");
    try {
      let value;
      if (Array.isArray(schema.enum)) value = JSON.parse(input.value);
      else if (type === "boolean") value = input.checked;
      else if (type === "integer" || type === "number") {
        if (input.value === "") { if (schema.type && !String(schema.type).includes("null")) throw new Error("a number is required"); value = null; }
        else {
          value = Number(input.value);
          if (!Number.isFinite(value)) throw new Error("not a number");
          if (type === "integer" && !Number.isInteger(value)) throw new Error("must be a whole number");
          if (schema.minimum !== undefined && value < schema.minimum) throw new Error(`must be at least ${schema.minimum}`);
          if (schema.maximum !== undefined && value > schema.maximum) throw new Error(`must be at most ${schema.maximum}`);
        }
      } else if (type === "array" || type === "object") {
        value = JSON.parse(input.value);
        if (type === "array" && !Array.isArray(value)) throw new Error("must be a JSON list");
        if (type === "object" && (Array.isArray(value) || typeof value !== "object" || value === null)) throw new Error("must be a JSON object");
      } else {
        value = input.value;
        if (schema.minLength !== undefined && value.length < schema.minLength) throw new Error(`needs at least ${schema.minLength} characters`);
        if (schema.pattern && !new RegExp(schema.pattern).test(value)) throw new Error(`must match ${schema.pattern}`);
      }
      return { ok: true, value };
    } catch (e) {
      error.textContent = `${name}: ${e.message}`;
      input.setAttribute("aria-invalid", "true");
      return { ok: false };
    }
  };
  const row = h("div", { class: "field" },
    h("label", { for: id }, schema.title || name, h("span", { class: "muted" }, ` (${type})`)),
    input, help ? h("small", { id: helpId }, help) : null, error);
  return { name, row, input, read };
}

export async function triggerView(dagId) {
  const { data: dag } = await api.get(`/dags/${enc(dagId)}/details`);
  const params = dag.params || {};
  const fields = Object.entries(params).map(([name, p]) => field(name, p && typeof p === "object" && "value" in p ? p : { value: p, schema: {} }));
  const raw = h("textarea", { id: "conf-json", rows: 8, spellcheck: "false", "aria-describedby": "conf-help conf-error" });
  const rawError = h("span", { id: "conf-error", class: "field-error" });
  const status = h("div", { "aria-live": "polite" });

  const fromForm = () => {
    const conf = {};
    let ok = true;
    for (const f of fields) {
      const r = f.read();
      if (r.ok) conf[f.name] = r.value; else ok = false;
    }
    return ok ? conf : null;
  };
  const syncRaw = () => { const conf = fromForm(); if (conf) raw.value = JSON.stringify(conf, null, 2); };
  fields.forEach((f) => f.input.addEventListener("change", syncRaw));
  syncRaw();

  const form = h("form", { class: "card trigger", "aria-labelledby": "trigger-title", novalidate: true },
    h("h1", { id: "trigger-title" }, `Trigger ${dag.dag_display_name}`),
    fields.length ? h("fieldset", {}, h("legend", {}, "Params"), fields.map((f) => f.row)) : h("p", { class: "muted" }, "This DAG has no params."),
    h("div", { class: "field" }, h("label", { for: "conf-json" }, "Conf (JSON)"), raw,
      h("small", { id: "conf-help" }, "Filled from the form; edit it to send other keys. What is sent is this JSON object."), rawError),
    h("button", { type: "submit", id: "trigger-submit" }, "Trigger run"), " ",
    h("a", { class: "button", href: `#/dags/${enc(dagId)}/grid` }, "Cancel"), status);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.replaceChildren();
    rawError.textContent = "";
    if (fromForm() === null) { status.append(errorBox(new Error("Fix the fields marked above."))); return; }
    let conf;
    try {
      conf = JSON.parse(raw.value || "{}");
      if (typeof conf !== "object" || conf === null || Array.isArray(conf)) throw new Error("conf must be a JSON object");
    } catch (e) {
      rawError.textContent = `Conf: ${e.message}`;
      raw.setAttribute("aria-invalid", "true");
      return;
    }
    try {
      const { data } = await api.post(`/dags/${enc(dagId)}/dagRuns`, { logical_date: null, conf });
      location.hash = `#/dags/${enc(dagId)}/grid?run=${enc(data.dag_run_id)}`;
    } catch (e) {
      status.append(errorBox(e));
    }
  });
  mount(form);
}
