// Deliveries: the delivery log with filters, refreshing by itself while the page is visible; one webhook's
// tries and exact payload, resend for a failed one; the recorded events of a table and action.

import { ACTIONS, ApiError, api, catalogueTables } from "../api.js";
import { badge, clearErrors, every, field, fieldError, h, notice, prettyJson, selectText, table, time, uid } from "../dom.js";

export const title = "Deliveries";

const STATUSES = ["pending", "retrying", "sent", "failed"];
const PAGE = 25;
const REFRESH_MS = 5000;

export function render(root, { params, signal }) {
  const state = {
    table: params.get("table") ?? "",
    action: params.get("action") ?? "",
    status: params.get("status") ?? "",
    before: params.get("before") ?? "",
    webhook: params.get("webhook") ?? "",
    newer: [], // the `before` of each newer page, to go back
  };
  const listId = uid("tables");
  const datalist = h("datalist", { id: listId });
  const filters = {
    table: h("input", { name: "table", list: listId, autocomplete: "off", spellcheck: "false", value: state.table }),
    action: h("select", { name: "action" }, h("option", { value: "" }, "any"), ACTIONS.map((a) => h("option", { value: a }, a))),
    status: h("select", { name: "status" }, h("option", { value: "" }, "any"), STATUSES.map((s) => h("option", { value: s }, s))),
  };
  filters.action.value = state.action;
  filters.status.value = state.status;
  const auto = h("input", { type: "checkbox", id: uid("auto"), checked: true });
  const refreshed = h("span", { class: "muted" });
  const said = notice();
  const listArea = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const older = h("button", { type: "button", disabled: true, on: { click: () => page(+1) } }, "Older");
  const newer = h("button", { type: "button", disabled: !state.before, on: { click: () => page(-1) } }, "Newer");
  const detailArea = h("section", { class: "card", hidden: true, "aria-label": "Webhook" });

  const filterForm = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter the delivery log" },
    field("Table", filters.table),
    datalist,
    field("Action", filters.action),
    field("Status", filters.status),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Filter")),
  );
  filterForm.addEventListener("submit", (event) => {
    event.preventDefault();
    applyFilters();
  });
  filters.action.addEventListener("change", applyFilters);
  filters.status.addEventListener("change", applyFilters);

  root.append(
    h("h1", {}, "Deliveries"),
    h("p", { class: "lead" }, "Every webhook made for you, newest first, with its tries."),
    filterForm,
    h("div", { class: "toolbar" }, h("div", { class: "field check" }, auto, h("label", { for: auto.id }, `Refresh every ${REFRESH_MS / 1000} s`)), refreshed),
    said,
    listArea,
    h("div", { class: "pager" }, newer, older),
    detailArea,
    eventsSection(signal),
  );

  let lastList = "";
  let lastDetail = "";

  function remember() {
    const query = new URLSearchParams();
    for (const key of ["table", "action", "status", "before", "webhook"]) if (state[key]) query.set(key, state[key]);
    const text = query.toString();
    history.replaceState(null, "", `#/deliveries${text ? `?${text}` : ""}`);
  }

  function applyFilters() {
    state.table = filters.table.value.trim();
    state.action = filters.action.value;
    state.status = filters.status.value;
    state.before = "";
    state.newer = [];
    remember();
    loadList();
  }

  function page(step) {
    if (step > 0) {
      state.newer.push(state.before);
      state.before = listArea.dataset.last ?? "";
    } else {
      state.before = state.newer.pop() ?? "";
    }
    remember();
    loadList();
  }

  async function loadList() {
    const query = { table: state.table, action: state.action, status: state.status, before: state.before, limit: PAGE };
    let webhooks;
    try {
      webhooks = await api("GET", "v1/webhook", { query, signal });
    } catch (exc) {
      if (signal.aborted || exc.status === 401) return;
      lastList = "";
      listArea.replaceChildren(h("p", { class: "notice error", role: "alert" }, exc.message));
      return;
    }
    refreshed.replaceChildren("Updated ", time(new Date().toISOString()));
    older.disabled = webhooks.length < PAGE;
    newer.disabled = !state.before;
    const seen = JSON.stringify(webhooks);
    if (seen === lastList) return; // nothing changed: keep the table (and the focus in it)
    lastList = seen;
    listArea.dataset.last = webhooks.at(-1)?.id ?? "";
    const focused = document.activeElement?.dataset?.focusKey;
    listArea.replaceChildren(webhookTable(webhooks, { show, resend }));
    if (focused) listArea.querySelector(`[data-focus-key="${CSS.escape(focused)}"]`)?.focus();
  }

  async function loadDetail() {
    if (!state.webhook) {
      detailArea.hidden = true;
      return;
    }
    let webhook;
    try {
      webhook = await api("GET", `v1/webhook/${encodeURIComponent(state.webhook)}`, { signal });
    } catch (exc) {
      if (signal.aborted || exc.status === 401) return;
      lastDetail = "";
      detailArea.replaceChildren(h("h2", {}, "Webhook"), h("p", { class: "notice error", role: "alert" }, exc.message));
      detailArea.hidden = false;
      return;
    }
    const seen = JSON.stringify(webhook);
    if (seen === lastDetail) return;
    lastDetail = seen;
    detailArea.replaceChildren(...webhookDetail(webhook, { resend, close }));
    detailArea.hidden = false;
  }

  function show(id) {
    state.webhook = id;
    lastDetail = "";
    remember();
    loadDetail().then(() => detailArea.querySelector("h2")?.focus());
  }

  function close() {
    state.webhook = "";
    remember();
    detailArea.hidden = true;
    lastDetail = "";
  }

  async function resend(w) {
    try {
      await api("POST", `v1/webhook/${w.id}/resend`, { signal });
      said.say(`Webhook ${w.id} is resent: it is pending a new round of tries.`, "ok");
    } catch (exc) {
      if (exc.status !== 401) said.say(exc.message, "error");
      return;
    }
    await Promise.all([loadList(), loadDetail()]);
  }

  catalogueTables(signal).then(
    (names) => datalist.replaceChildren(...names.map((name) => h("option", { value: name }))),
    () => {},
  );
  loadList();
  loadDetail();
  every(
    REFRESH_MS,
    async () => {
      if (auto.checked) await Promise.all([loadList(), loadDetail()]);
    },
    signal,
  );
}

function webhookTable(webhooks, { show, resend }) {
  const rows = webhooks.map((w) => [
    h("span", { class: "mono" }, w.id),
    time(w.createdAt),
    h("span", { class: "mono" }, w.table),
    w.action,
    h("span", { class: "mono break" }, w.endpoint),
    String(w.eventCount),
    badge(w.status),
    String(w.tries),
    w.lastFailure ? h("span", { class: "break" }, w.lastFailure) : h("span", { class: "muted" }, "—"),
    h(
      "div",
      { class: "row-actions" },
      h("button", { type: "button", class: "small", "aria-label": `Details of webhook ${w.id}`, dataset: { focusKey: `show-${w.id}` }, on: { click: () => show(w.id) } }, "Details"),
      w.status === "failed"
        ? h("button", { type: "button", class: "small", "aria-label": `Resend webhook ${w.id}`, dataset: { focusKey: `resend-${w.id}` }, on: { click: () => resend(w) } }, "Resend")
        : null,
    ),
  ]);
  const columns = ["Id", "Made", "Table", "Action", "Endpoint", "Events", "Status", "Tries", "Last failure", ""];
  return table("Webhooks, newest first", columns, rows, "No webhooks.");
}

function webhookDetail(w, { resend, close }) {
  const attempts = w.attempts.map((a, i) => [
    String(i + 1),
    time(a.at),
    `${a.durationMs} ms`,
    a.httpStatus === null ? h("span", { class: "muted" }, "no answer") : String(a.httpStatus),
    a.error ? h("span", { class: "break" }, a.error) : h("span", { class: "ok-text" }, "ok"),
  ]);
  const pretty = prettyJson(w.payload);
  const pre = h("pre", { class: "payload", tabindex: "0", "aria-label": "Payload" }, pretty);
  const exact = h("input", { type: "checkbox", id: uid("exact") });
  exact.addEventListener("change", () => {
    pre.textContent = exact.checked ? w.payload : pretty;
  });
  const copied = notice();
  const copy = h("button", { type: "button" }, "Copy");
  copy.addEventListener("click", async () => {
    try {
      if (!navigator.clipboard) throw new Error("no clipboard");
      await navigator.clipboard.writeText(w.payload);
      copied.say("Copied: the body exactly as sent.", "ok");
    } catch {
      exact.checked = true;
      pre.textContent = w.payload;
      selectText(pre);
      copied.say("The browser does not let the page copy: the body is selected, press Ctrl+C (⌘C on a Mac).");
    }
  });
  return [
    h("h2", { tabindex: "-1" }, "Webhook ", h("span", { class: "mono" }, w.id)),
    h(
      "dl",
      { class: "facts" },
      fact("Status", badge(w.status)),
      fact("Table and action", `${w.table} ${w.action}`),
      fact("Endpoint", h("span", { class: "mono break" }, w.endpoint)),
      fact("Events", String(w.eventCount)),
      fact("Made", time(w.createdAt)),
      fact("Last try ended", time(w.processedAt)),
      fact("Last failure", w.lastFailure || "—"),
    ),
    h(
      "div",
      { class: "toolbar" },
      w.status === "failed" ? h("button", { type: "button", class: "primary", on: { click: () => resend(w) } }, "Resend") : null,
      h("button", { type: "button", on: { click: close } }, "Close"),
    ),
    h("h3", {}, "Tries"),
    table("Tries", ["#", "At", "Took", "HTTP status", "Error"], attempts, "No tries yet."),
    h("h3", {}, "Payload"),
    h("div", { class: "toolbar" }, copy, h("div", { class: "field check" }, exact, h("label", { for: exact.id }, "Show exactly as sent"))),
    copied,
    pre,
  ];
}

function fact(name, value) {
  return h("div", {}, h("dt", {}, name), h("dd", {}, value));
}

function eventsSection(signal) {
  const inputs = {
    table: h("input", { name: "table", autocomplete: "off", spellcheck: "false" }),
    action: h("select", { name: "action" }, ACTIONS.map((a) => h("option", { value: a }, a))),
  };
  const area = h("div");
  const form = h(
    "form",
    { class: "filters", novalidate: true, "aria-label": "Events of a table and action" },
    field("Table", inputs.table),
    field("Action", inputs.action),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Show events")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(Object.values(inputs));
    const query = { table: inputs.table.value.trim(), action: inputs.action.value, limit: 100 };
    let events;
    try {
      events = await api("GET", "v1/event", { query, signal });
    } catch (exc) {
      if (!(exc instanceof ApiError) || exc.status === 401) return;
      if (inputs[exc.field]) fieldError(inputs[exc.field], `${exc.field} ${exc.problem}`);
      else area.replaceChildren(h("p", { class: "notice error", role: "alert" }, exc.message));
      return;
    }
    const rows = events.map((e) => [h("span", { class: "mono" }, e.id), String(e.rowID), badge(e.status), time(e.eventDate), time(e.createdAt), time(e.processedAt)]);
    area.replaceChildren(table(`Events of ${query.table} ${query.action}`, ["Id", "Row id", "Status", "Event time", "Recorded", "Put in a webhook"], rows, "No events recorded."));
  });
  return h("section", { class: "events" }, h("h2", {}, "Events"), h("p", { class: "muted" }, "The recorded events of one table and action, newest first."), form, area);
}
