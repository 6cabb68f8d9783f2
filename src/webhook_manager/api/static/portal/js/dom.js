// Building the page safely: every value goes in as text (createElement, textContent, setAttribute), never as
// HTML, so a table, endpoint or payload holding "<script>" shows as those characters and runs nothing.

const PROPERTIES = new Set(["value", "checked", "selected", "disabled", "hidden"]);

/** An element: h("button", {type: "button", on: {click: f}}, "Save"). Strings and numbers among the children
 * become text nodes; null, undefined and false are left out; arrays are flattened. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  const later = [];
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "on") {
      for (const [type, listener] of Object.entries(value)) el.addEventListener(type, listener);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (PROPERTIES.has(key)) {
      later.push([key, value]); // after the children, so a <select> has its options
    } else if (/^on|html$/i.test(key)) {
      throw new Error(`h(): ${key} is not allowed`); // no inline handlers, no markup
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  for (const [key, value] of later) el[key] = value;
  return el;
}

/** Append children as h() takes them. */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** A time in the browser's local time, with the UTC time (ISO 8601) on hover; "—" when there is none. */
export function time(iso) {
  if (!iso) return h("span", { class: "muted", title: "not yet" }, "—");
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return h("span", {}, iso);
  return h("time", { datetime: at.toISOString(), title: `${at.toISOString()} (UTC)` }, at.toLocaleString());
}

let unique = 0;
/** A fresh id for an element (labels and descriptions refer to it). */
export function uid(prefix) {
  unique += 1;
  return `${prefix}-${unique}`;
}

const errorsOf = new WeakMap();

/** A labelled form field: <label for>, the control, an optional hint and a place for the API's error about
 * it, both tied to the control by aria-describedby. */
export function field(label, control, hint) {
  if (!control.id) control.id = uid("field");
  const error = h("p", { class: "field-error", id: `${control.id}-error`, hidden: true });
  errorsOf.set(control, error);
  const described = [error.id];
  let hintEl = null;
  if (hint) {
    hintEl = h("p", { class: "hint", id: `${control.id}-hint` }, hint);
    described.unshift(hintEl.id);
  }
  control.setAttribute("aria-describedby", described.join(" "));
  control.setAttribute("aria-errormessage", error.id);
  const isCheck = control.type === "checkbox";
  const labelEl = h("label", { for: control.id }, label);
  return h("div", { class: isCheck ? "field check" : "field" }, isCheck ? [control, labelEl] : [labelEl, control], hintEl, error);
}

/** Show (or with no message, clear) the error of a field made by field(). */
export function fieldError(control, message) {
  const error = errorsOf.get(control);
  if (!error) return;
  error.textContent = message ?? "";
  error.hidden = !message;
  if (message) control.setAttribute("aria-invalid", "true");
  else control.removeAttribute("aria-invalid");
}

/** Clear the errors of these controls. */
export function clearErrors(controls) {
  for (const control of controls) fieldError(control, null);
}

/** A line for messages that screen readers announce: role=status, or role=alert for errors. */
export function notice(role = "status") {
  const el = h("p", { class: "notice", role, hidden: true });
  el.say = (message, kind = "") => {
    el.textContent = message ?? "";
    el.hidden = !message;
    el.className = `notice ${kind}`.trim();
  };
  return el;
}

/** A table with a caption, its head and rows; on narrow screens each row shows as a card, each cell with its
 * column's name (data-label). */
export function table(caption, columns, rows, empty) {
  const body = h("tbody");
  if (rows.length === 0) {
    body.append(h("tr", {}, h("td", { colspan: columns.length, class: "empty" }, empty)));
  }
  for (const row of rows) {
    const cells = Array.isArray(row) ? row : row.cells;
    const tr = h("tr", { dataset: row.dataset ?? {} });
    cells.forEach((cell, i) => tr.append(h("td", { "data-label": columns[i] }, cell)));
    body.append(tr);
  }
  return h(
    "div",
    { class: "table-wrap" },
    h("table", {}, h("caption", { class: "vh" }, caption), h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))), body),
  );
}

/** A status word as a badge (sent, failed, pending, retrying, processed, disabled, enabled). */
export function badge(word) {
  return h("span", { class: `badge badge-${String(word).replace(/[^a-z]/g, "")}` }, word);
}

/** Select the text of an element, as a fallback for copying it by hand. */
export function selectText(el) {
  const range = document.createRange();
  range.selectNodeContents(el);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

/** Run ``task`` now and then every ``ms`` while the page is visible, until ``signal`` aborts; a hidden page
 * waits and catches up as soon as it is shown again. */
export function every(ms, task, signal) {
  let timer = null;
  const tick = async () => {
    timer = null;
    if (signal.aborted) return;
    if (document.visibilityState === "visible") {
      try {
        await task();
      } catch {
        // the task shows its own errors
      }
    }
    if (!signal.aborted) timer = setTimeout(tick, ms);
  };
  const shown = () => {
    if (document.visibilityState === "visible" && timer !== null) {
      clearTimeout(timer);
      tick();
    }
  };
  document.addEventListener("visibilitychange", shown);
  signal.addEventListener("abort", () => {
    if (timer !== null) clearTimeout(timer);
    document.removeEventListener("visibilitychange", shown);
  });
  timer = setTimeout(tick, ms);
}

/** JSON text re-indented, token by token: numbers, strings and key order stay exactly as sent (parsing and
 * printing again would round integers past 2^53). */
export function prettyJson(text, indent = "  ") {
  let out = "";
  let depth = 0;
  let inString = false;
  let escaped = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      out += c;
      if (escaped) escaped = false;
      else if (c === "\\") escaped = true;
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (c === "{" || c === "[") {
      let next = i + 1;
      while (next < text.length && /\s/.test(text[next])) next++;
      if (text[next] === (c === "{" ? "}" : "]")) {
        out += c + text[next];
        i = next;
      } else {
        depth++;
        out += `${c}\n${indent.repeat(depth)}`;
      }
    } else if (c === "}" || c === "]") {
      depth = Math.max(0, depth - 1);
      out += `\n${indent.repeat(depth)}${c}`;
    } else if (c === ",") {
      out += `,\n${indent.repeat(depth)}`;
    } else if (c === ":") {
      out += ": ";
    } else if (!/\s/.test(c)) {
      out += c;
    }
  }
  return out;
}
