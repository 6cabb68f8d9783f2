// Send a test event to a configuration: POST /v1/event with its table and action and one item.

import { ApiError, api } from "../api.js";
import { clearErrors, field, fieldError, h, notice } from "../dom.js";

export const title = "Send a test event";

export function render(root, { params, signal }) {
  const inputs = {
    configuration: h("select", { name: "configuration" }),
    rowId: h("input", { name: "rowId", inputmode: "numeric", autocomplete: "off", value: "1" }),
    data: h("textarea", { name: "data", rows: "6", spellcheck: "false" }, '{"name": "test"}'),
  };
  const submit = h("button", { type: "submit", class: "primary" }, "Send");
  const problem = notice("alert");
  const result = h("div", { role: "status" });
  const form = h(
    "form",
    { class: "card", novalidate: true, "aria-label": "Test event" },
    field("Configuration", inputs.configuration),
    field("Row id", inputs.rowId, "The item's rowId: a whole number from 0 to 2^63-1."),
    field("Data", inputs.data, "The item's data: any JSON (empty: null)."),
    problem,
    h("div", { class: "actions" }, submit),
  );
  const intro = h("p", { class: "lead" }, "Records one event of a configuration's table and action, as your application would; it goes out as a webhook to every enabled configuration of that table and action.");
  root.append(h("h1", {}, "Send a test event"), intro, form, result);
  let configurations = [];

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(Object.values(inputs));
    problem.say(null);
    result.replaceChildren();
    const chosen = configurations.find((c) => c.id === inputs.configuration.value);
    if (!chosen) return problem.say("Choose a configuration.", "error");
    const rowId = inputs.rowId.value.trim() || "0";
    if (!/^\d{1,19}$/.test(rowId)) return fieldError(inputs.rowId, "rowId must be a whole number from 0 to 2^63-1");
    const data = inputs.data.value.trim() || "null";
    try {
      JSON.parse(data);
    } catch (exc) {
      return fieldError(inputs.data, `data is not valid JSON (${exc.message})`);
    }
    // Written as text, so the numbers of rowId and data go exactly as typed (JSON.parse would round past 2^53).
    const raw = `{"table":${JSON.stringify(chosen.table)},"action":${JSON.stringify(chosen.action)},"items":[{"rowId":${rowId},"data":${data}}]}`;
    submit.disabled = true;
    try {
      const recorded = await api("POST", "v1/event", { raw, signal });
      result.replaceChildren(answer(chosen, recorded));
    } catch (exc) {
      if (!(exc instanceof ApiError) || exc.status === 401) return;
      if (exc.field?.endsWith(".rowId")) fieldError(inputs.rowId, `rowId ${exc.problem}`);
      else if (exc.field && /^(body|items)/.test(exc.field)) fieldError(inputs.data, `${exc.field} ${exc.problem}`);
      else problem.say(exc.message, "error");
    } finally {
      submit.disabled = false;
    }
  });

  api("GET", "v1/webhook-configuration", { signal }).then(
    (list) => {
      configurations = list;
      if (list.length === 0) {
        form.hidden = true;
        root.append(h("p", { class: "notice" }, "No configurations yet: ", h("a", { href: "#/configurations" }, "create one"), " first."));
        return;
      }
      inputs.configuration.replaceChildren(
        ...list.map((c) => h("option", { value: c.id }, `${c.table} ${c.action} → ${c.endpoint}${c.disabled ? " (disabled)" : ""}`)),
      );
      const wanted = params.get("configuration");
      if (wanted && list.some((c) => c.id === wanted)) inputs.configuration.value = wanted;
    },
    (exc) => {
      if (!signal.aborted && exc.status !== 401) problem.say(exc.message, "error");
    },
  );
}

function answer(configuration, recorded) {
  const log = `#/deliveries?table=${encodeURIComponent(configuration.table)}&action=${encodeURIComponent(configuration.action)}`;
  if (recorded.recorded === 0) {
    return h(
      "p",
      { class: "notice error" },
      `Received ${recorded.received}, recorded 0: no enabled configuration of ${configuration.table} ${configuration.action}, so the event was dropped.`,
    );
  }
  return h(
    "p",
    { class: "notice ok" },
    `Recorded ${recorded.recorded} event of ${configuration.table} ${configuration.action}; it goes out as a webhook shortly. `,
    h("a", { href: log }, "See it in Deliveries"),
  );
}
