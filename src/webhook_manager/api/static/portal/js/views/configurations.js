// Configurations: the list; create, edit, disable or enable and remove, with the API's field errors shown at
// the field; the table from the webhook-type catalogue (free text allowed); the secret hidden until asked for.

import { ACTIONS, ApiError, api, catalogueTables } from "../api.js";
import { badge, clearErrors, field, fieldError, h, notice, table, time, uid } from "../dom.js";
import { newSecret } from "../signing.js";

export const title = "Configurations";

const FIELDS = ["table", "action", "endpoint", "secret", "disabled"];

export function render(root, { signal }) {
  const said = notice();
  const listArea = h("div", { "aria-live": "polite" }, h("p", { class: "muted" }, "Loading…"));
  const form = configurationForm({ saved, signal, said });
  const add = h("button", { type: "button", class: "primary", on: { click: () => form.open(null) } }, "New configuration");
  root.append(
    h("h1", {}, "Configurations"),
    h("p", { class: "lead" }, "Each configuration sends the events of one table and action to an endpoint, signed with its secret."),
    h("div", { class: "toolbar" }, add),
    said,
    form.element,
    h("h2", {}, "Your configurations"),
    listArea,
  );

  let shown = [];

  async function load() {
    try {
      shown = await api("GET", "v1/webhook-configuration", { signal });
    } catch (exc) {
      if (!signal.aborted && exc.status !== 401) listArea.replaceChildren(h("p", { class: "notice error" }, exc.message));
      return;
    }
    listArea.replaceChildren(configurationTable(shown, { edit: form.open, toggle, remove }));
  }

  async function saved(message) {
    said.say(message, "ok");
    await load();
  }

  async function toggle(c) {
    const body = { table: c.table, action: c.action, endpoint: c.endpoint, secret: c.secret, disabled: !c.disabled };
    if (c.headers) body.headers = c.headers; // a PUT replaces every field: keep the custom headers
    try {
      await api("PUT", `v1/webhook-configuration/${c.id}`, { body, signal });
      await saved(`${c.table} ${c.action} is ${body.disabled ? "disabled: it gets no new webhooks" : "enabled again"}.`);
    } catch (exc) {
      if (exc.status !== 401) said.say(exc.message, "error");
    }
  }

  async function remove(c) {
    try {
      await api("DELETE", `v1/webhook-configuration/${c.id}`, { signal });
      await saved(`The configuration ${c.table} ${c.action} → ${c.endpoint} is removed.`);
    } catch (exc) {
      if (exc.status !== 401) said.say(exc.message, "error");
    }
  }

  catalogueTables(signal).then(
    (tables) => form.offerTables(tables),
    () => {},
  );
  load();
}

function configurationTable(configurations, actions) {
  const rows = configurations.map((c) => ({
    dataset: { id: c.id },
    cells: [
      h("span", { class: "mono" }, c.table),
      c.action,
      h("span", { class: "mono break" }, c.endpoint),
      secretCell(c.secret),
      badge(c.disabled ? "disabled" : "enabled"),
      time(c.updatedat),
      rowActions(c, actions),
    ],
  }));
  return table("Your configurations", ["Table", "Action", "Endpoint", "Secret", "State", "Changed", "Actions"], rows, "No configurations yet.");
}

function secretCell(secret) {
  if (secret === "") return h("span", { class: "muted" }, "none (webhooks are not signed)");
  const value = h("span", { class: "mono break", hidden: true }, secret);
  const hidden = h("span", { class: "muted" }, "hidden");
  const button = h("button", { type: "button", class: "small", "aria-expanded": "false" }, "Show");
  button.addEventListener("click", () => {
    const show = value.hidden;
    value.hidden = !show;
    hidden.hidden = show;
    button.textContent = show ? "Hide" : "Show";
    button.setAttribute("aria-expanded", String(show));
  });
  return h("span", { class: "secret" }, hidden, value, " ", button);
}

function rowActions(c, { edit, toggle, remove }) {
  const name = `${c.table} ${c.action}`;
  const cell = h("div", { class: "row-actions" });
  const normal = () =>
    cell.replaceChildren(
      h("button", { type: "button", class: "small", "aria-label": `Edit ${name}`, on: { click: () => edit(c) } }, "Edit"),
      h(
        "button",
        { type: "button", class: "small", "aria-label": `${c.disabled ? "Enable" : "Disable"} ${name}`, on: { click: () => toggle(c) } },
        c.disabled ? "Enable" : "Disable",
      ),
      h("a", { class: "button small", href: `#/test?configuration=${c.id}`, "aria-label": `Send a test event to ${name}` }, "Test"),
      h("button", { type: "button", class: "small danger", "aria-label": `Remove ${name}`, on: { click: confirm } }, "Remove"),
    );
  const confirm = () => {
    const yes = h("button", { type: "button", class: "small danger", on: { click: () => remove(c) } }, "Yes, remove");
    cell.replaceChildren(
      h("span", {}, "Remove it? "),
      yes,
      h("button", { type: "button", class: "small", on: { click: () => (normal(), cell.querySelector("button").focus()) } }, "Cancel"),
    );
    yes.focus();
  };
  normal();
  return cell;
}

function configurationForm({ saved, signal, said }) {
  const listId = uid("tables");
  const tables = h("datalist", { id: listId });
  const inputs = {
    table: h("input", { name: "table", list: listId, autocomplete: "off", spellcheck: "false", maxlength: "64" }),
    action: h("select", { name: "action" }, ACTIONS.map((a) => h("option", { value: a }, a))),
    endpoint: h("input", { name: "endpoint", inputmode: "url", autocomplete: "url", spellcheck: "false", placeholder: "https://example.com/hooks" }),
    secret: h("input", { name: "secret", type: "password", autocomplete: "new-password", spellcheck: "false", maxlength: "256" }),
    disabled: h("input", { name: "disabled", type: "checkbox" }),
  };
  const heading = h("h2", { id: uid("form-title") }, "New configuration");
  const reveal = h("button", { type: "button", class: "small", "aria-pressed": "false" }, "Show secret");
  reveal.addEventListener("click", () => {
    const show = inputs.secret.type === "password";
    inputs.secret.type = show ? "text" : "password";
    reveal.textContent = show ? "Hide secret" : "Show secret";
    reveal.setAttribute("aria-pressed", String(show));
  });
  const generate = h("button", { type: "button", class: "small" }, "Generate");
  generate.addEventListener("click", () => {
    inputs.secret.value = newSecret();
    fieldError(inputs.secret, null);
  });
  const problem = notice("alert");
  const submit = h("button", { type: "submit", class: "primary" }, "Save");
  const cancel = h("button", { type: "button" }, "Cancel");
  const element = h(
    "form",
    { class: "card", novalidate: true, hidden: true, "aria-labelledby": heading.id },
    heading,
    field("Table", inputs.table, "A database table or a custom event name: 1–64 characters of A-Z a-z 0-9 _ . -"),
    tables,
    field("Action", inputs.action),
    field("Endpoint", inputs.endpoint, "An http:// or https:// URL that receives the webhooks."),
    field("Secret", inputs.secret, "Signs each webhook (hmac and webhook-signature); empty: unsigned."),
    h("div", { class: "inline-actions" }, reveal, generate),
    field("Disabled (gets no new webhooks)", inputs.disabled),
    problem,
    h("div", { class: "actions" }, submit, cancel),
  );
  let editing = null;

  function open(c) {
    editing = c;
    heading.textContent = c ? `Edit ${c.table} ${c.action}` : "New configuration";
    inputs.table.value = c?.table ?? "";
    inputs.action.value = c?.action ?? "insert";
    inputs.endpoint.value = c?.endpoint ?? "";
    inputs.secret.value = c?.secret ?? "";
    inputs.secret.type = "password";
    reveal.textContent = "Show secret";
    reveal.setAttribute("aria-pressed", "false");
    inputs.disabled.checked = c?.disabled ?? false;
    clearErrors(Object.values(inputs));
    problem.say(null);
    said.say(null);
    element.hidden = false;
    inputs.table.focus();
  }

  cancel.addEventListener("click", () => {
    element.hidden = true;
    editing = null;
  });

  element.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(Object.values(inputs));
    problem.say(null);
    const body = {
      table: inputs.table.value.trim(),
      action: inputs.action.value,
      endpoint: inputs.endpoint.value.trim(),
      secret: inputs.secret.value,
      disabled: inputs.disabled.checked,
    };
    if (editing?.headers) body.headers = editing.headers; // not edited here; a PUT without them drops them
    submit.disabled = true;
    try {
      const done = editing
        ? await api("PUT", `v1/webhook-configuration/${editing.id}`, { body, signal })
        : await api("POST", "v1/webhook-configuration", { body, signal });
      element.hidden = true;
      await saved(`Saved: ${done.table} ${done.action} → ${done.endpoint}.`);
    } catch (exc) {
      if (!(exc instanceof ApiError) || exc.status === 401) return;
      const control = FIELDS.includes(exc.field) ? inputs[exc.field] : null;
      if (control) {
        fieldError(control, `${exc.field} ${exc.problem}`);
        control.focus();
      } else {
        problem.say(exc.message, "error");
      }
    } finally {
      submit.disabled = false;
    }
  });

  return {
    element,
    open,
    offerTables(names) {
      tables.replaceChildren(...names.map((name) => h("option", { value: name })));
    },
  };
}
