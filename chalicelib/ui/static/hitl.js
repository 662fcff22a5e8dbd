// Human-in-the-loop requests: the tenant's requests still waiting for an answer
// (every DAG and run: the API's `~` paths), and a form answering one: its options
// (one, or several when the task allows), its params (the trigger form's fields)
// and the API's refusal shown beside it. Answering needs the user role; a viewer
// sees the requests only.

import { api, enc, may, poll } from "./api.js";
import { h, mount, when, errorBox, announce } from "./dom.js";
import { field } from "./trigger.js";

const keyOf = (d) => {
  const ti = d.task_instance;
  return `${ti.dag_id}/${ti.dag_run_id}/${ti.task_id}/${ti.map_index}`;
};
const label = (ti) => (ti.map_index >= 0 ? `${ti.task_id}[${ti.map_index}]` : ti.task_id);

function answerForm(detail, onAnswered) {
  const ti = detail.task_instance;
  const defaults = new Set(detail.defaults || []);
  const kind = detail.multiple ? "checkbox" : "radio";
  const options = detail.options.map((option, i) => {
    const id = `hitl-option-${i}`;
    return h("div", {}, h("input", { type: kind, id, name: "hitl-option", value: option, checked: defaults.has(option) }),
      " ", h("label", { for: id }, option));
  });
  const params = Object.entries(detail.params || {}).map(([name, p]) =>
    field(name, p && typeof p === "object" && "value" in p ? p : { value: p, schema: {} }));
  const error = h("p", { class: "error", id: "hitl-error", role: "alert", tabindex: -1 });
  const form = h("form", { class: "card editor", id: "hitl-form", "aria-labelledby": "hitl-subject", novalidate: true },
    h("h2", { id: "hitl-subject" }, detail.subject),
    h("p", { class: "muted" }, `${ti.dag_id} · ${ti.dag_run_id} · ${label(ti)} · asked ${when(detail.created_at)}`),
    detail.body ? h("p", { id: "hitl-body" }, detail.body) : null,
    h("fieldset", {}, h("legend", {}, detail.multiple ? "Choose one or more" : "Choose one"), options),
    params.length ? h("fieldset", {}, h("legend", {}, "Params"), params.map((f) => f.row)) : null,
    h("div", { class: "actions" }, h("button", { type: "submit", id: "hitl-submit" }, "Send answer")),
    error);
  form.addEventListener("change", () => { error.textContent = ""; });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const chosen = [...form.querySelectorAll("input[name=hitl-option]:checked")].map((e) => e.value);
    const values = {};
    let ok = true;
    for (const f of params) {
      const r = f.read();
      if (r.ok) values[f.name] = r.value; else ok = false;
    }
    if (!chosen.length || !ok) {
      error.textContent = chosen.length ? "Fix the params marked above." : "Choose an option.";
      error.focus();
      return;
    }
    const path = `/dags/${enc(ti.dag_id)}/dagRuns/${enc(ti.dag_run_id)}/taskInstances/${enc(ti.task_id)}/${ti.map_index}/hitlDetails`;
    try {
      const { data } = await api.patch(path, { chosen_options: chosen, params_input: values });
      onAnswered(`Answered ${label(ti)} of ${ti.dag_run_id}: ${data.chosen_options.join(", ")}`);
    } catch (e) {
      error.textContent = `Not sent: ${e.message}`;
      error.focus();
    }
  });
  return form;
}

export async function hitlView() {
  let pending = [];
  let chosen = null;
  const body = h("tbody");
  const status = h("p", { id: "hitl-status", role: "status" });
  const side = h("div", { id: "hitl-side" });
  const problem = h("div");

  function render() {
    body.replaceChildren(...(pending.length ? pending.map((d) => {
      const ti = d.task_instance;
      const users = (d.assigned_users || []).map((u) => u.name || u.id).join(", ");
      return h("tr", { "data-hitl": keyOf(d), class: chosen === keyOf(d) ? "selected" : "" },
        h("td", {}, h("a", { href: `#/dags/${enc(ti.dag_id)}/runs/${enc(ti.dag_run_id)}?task=${enc(ti.task_id)}` }, `${ti.dag_id} · ${ti.dag_run_id}`)),
        h("td", {}, label(ti)),
        h("td", {}, d.subject),
        h("td", { class: "nowrap" }, when(d.created_at)),
        h("td", {}, users || "anyone"),
        may("user") ? h("td", {}, h("button", { type: "button", "aria-label": `Answer ${label(ti)} of ${ti.dag_run_id}`,
          onclick: () => open(d) }, "Answer…")) : null);
    }) : [h("tr", {}, h("td", { colspan: may("user") ? "6" : "5", class: "muted" }, "No request is waiting."))]));
  }

  function open(detail) {
    chosen = keyOf(detail);
    render();
    side.replaceChildren(answerForm(detail, (message) => {
      chosen = null;
      side.replaceChildren();
      status.textContent = message;
      announce(message);
      refresh();
    }));
    side.querySelector("input")?.focus();
  }

  async function refresh() {
    try {
      const { data, changed } = await api.get("/dags/~/dagRuns/~/hitlDetails", { response_received: false, limit: 100 });
      problem.replaceChildren();
      if (!changed) return;
      pending = data.hitl_details;
      if (chosen && !pending.some((d) => keyOf(d) === chosen)) { chosen = null; side.replaceChildren(); }
      render();
    } catch (e) {
      problem.replaceChildren(errorBox(e));
    }
  }

  const head = ["Run", "Task", "Subject", "Asked (UTC)", "Who may answer"].concat(may("user") ? ["Answer"] : []);
  mount(h("div", {},
    h("h1", {}, "Requests waiting for a person"),
    h("p", { class: "muted" }, "Human-in-the-loop tasks of this tenant that wait for an answer, oldest first."),
    problem, status,
    h("table", { class: "table", id: "hitl-table" },
      h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col" }, c)))), body),
    side));
  return poll(refresh, 5000);
}
