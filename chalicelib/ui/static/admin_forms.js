// The Admin view's editing pieces: a form built from a list of fields (create or
// edit one item, the API's error shown next to it) and an inline delete
// confirmation. Secret fields (a connection's password and extra) start empty
// and are sent only when something is typed, so editing never needs, shows or
// overwrites a secret nobody typed.

import { h, announce } from "./dom.js";

function input(id, field, value) {
  const common = { id, name: field.name, required: field.required && !field.secret };
  if (field.hint) common["aria-describedby"] = `${id}-hint`;
  if (field.type === "textarea") return h("textarea", { ...common, rows: 3, cols: 50 }, value ?? "");
  if (field.type === "select") {
    return h("select", common, field.options.map((o) => h("option", { value: o, selected: o === value }, o)));
  }
  return h("input", {
    ...common, type: field.type || "text", value: value ?? "", autocomplete: field.secret ? "new-password" : "off",
    min: field.min, placeholder: field.placeholder,
  });
}

// Reads the form: text as typed, empty as null, numbers as numbers; a secret
// field left empty is left out (undefined), meaning "keep what is stored".
function values(form, fields) {
  const out = {};
  for (const field of fields) {
    const el = form.elements.namedItem(field.name);
    if (!el) continue;
    const raw = el.value;
    if (field.secret && raw === "") continue;
    if (raw === "") out[field.name] = null;
    else out[field.name] = field.type === "number" ? Number(raw) : raw;
  }
  return out;
}

// A form for one item of a section: `item` null creates one. `save(values, item)`
// calls the API; a refusal is shown under the form and focus goes to it, the
// form keeping what was typed.
export function editorForm(section, item, { onSaved, onCancel }) {
  const prefix = `${section.id}-f`;
  const title = item ? `Edit ${section.noun} ${section.name(item)}` : `New ${section.noun}`;
  const error = h("p", { class: "error", id: `${section.id}-error`, role: "alert", tabindex: -1 });
  const rows = section.fields.filter((f) => !(item && f.newOnly)).map((field) => {
    const id = `${prefix}-${field.name}`;
    const hint = item && field.secret
      ? `${field.isSet ? (field.isSet(item) ? "Set; never" : "Not set; never") : "Never"} shown. Leave empty to keep it, type to replace it.`
      : field.hint;
    return h("div", { class: "field" },
      h("label", { for: id }, field.label),
      input(id, { ...field, hint }, item && !field.secret ? field.value(item) : field.initial),
      hint ? h("small", { id: `${id}-hint`, class: "muted" }, hint) : null);
  });
  const form = h("form", { class: "card editor", id: `${section.id}-form`, "aria-labelledby": `${prefix}-title`, novalidate: true },
    h("h3", { id: `${prefix}-title` }, title), rows,
    h("div", { class: "actions" },
      h("button", { type: "submit", id: `${section.id}-save` }, item ? "Save" : "Create"),
      h("button", { type: "button", id: `${section.id}-cancel`, onclick: onCancel }, "Cancel")),
    error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      const answer = await section.save(values(form, section.fields), item);
      announce(`${title}: saved`);
      onSaved(answer);
    } catch (e) {
      error.textContent = `Not saved: ${e.message}`;
      error.focus();
    }
  });
  return form;
}

// "Delete" turns into "Delete X? Yes / Keep" in place; a refusal is shown there.
export function deleteControl(section, item, onDeleted) {
  const label = section.name(item);
  const cell = h("span", { class: "row-actions" });
  const ask = () => {
    const yes = h("button", { type: "button", class: "danger", "data-confirm": label, onclick: async () => {
      try {
        await section.remove(item);
        announce(`${section.noun} ${label} deleted`);
        onDeleted();
      } catch (e) {
        cell.replaceChildren(h("span", { class: "error", role: "alert" }, `Not deleted: ${e.message}`));
      }
    } }, `Yes, ${section.removeVerb || "delete"} ${label}`);
    cell.replaceChildren(yes, " ", h("button", { type: "button", onclick: () => cell.replaceChildren(button) }, "Keep"));
    yes.focus();
  };
  const button = h("button", { type: "button", "aria-label": `${section.removeVerb || "Delete"} ${section.noun} ${label}`, onclick: ask },
    section.removeVerb ? section.removeVerb[0].toUpperCase() + section.removeVerb.slice(1) : "Delete");
  cell.append(button);
  return cell;
}
