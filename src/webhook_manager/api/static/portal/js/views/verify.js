// Verify: the hmac of a webhook id, and a Standard Webhooks check of a pasted body and headers, computed in
// the browser (WebCrypto), nothing sent anywhere; receiver code samples as text.

import { api } from "../api.js";
import { field, h, notice } from "../dom.js";
import { SAMPLES } from "../samples.js";
import { checkStandardWebhook, parseHeaders, subtle, webhookHmac } from "../signing.js";

export const title = "Verify";

export function render(root, { signal }) {
  const secret = h("input", { name: "secret", type: "password", autocomplete: "off", spellcheck: "false" });
  const reveal = h("button", { type: "button", class: "small", "aria-pressed": "false" }, "Show secret");
  reveal.addEventListener("click", () => {
    const show = secret.type === "password";
    secret.type = show ? "text" : "password";
    reveal.textContent = show ? "Hide secret" : "Show secret";
    reveal.setAttribute("aria-pressed", String(show));
  });
  const fromConfiguration = h("select", { name: "from" }, h("option", { value: "" }, "—"));
  const fromField = field("Or take the secret of a configuration", fromConfiguration);
  fromField.hidden = true;
  const noCrypto = notice("alert");
  if (!subtle()) {
    noCrypto.say("This browser computes signatures only on pages served over HTTPS or from localhost; open the dashboard that way to use this page.", "error");
  }

  const secretForm = h(
    "form",
    { class: "card", novalidate: true, "aria-labelledby": "secret-title", on: { submit: (event) => event.preventDefault() } },
    h("h2", { id: "secret-title" }, "The configuration's secret"),
    field("Secret", secret),
    h("div", { class: "inline-actions" }, reveal),
    fromField,
  );
  root.append(
    h("h1", {}, "Verify a webhook"),
    h("p", { class: "lead" }, "Check a webhook's signatures with its configuration's secret. Everything is computed in this browser; nothing is sent."),
    noCrypto,
    secretForm,
    hmacSection(secret),
    signatureSection(secret),
    samplesSection(),
  );

  api("GET", "v1/webhook-configuration", { signal }).then(
    (list) => {
      const signed = list.filter((c) => c.secret !== "");
      if (signed.length === 0) return;
      fromConfiguration.append(...signed.map((c) => h("option", { value: c.id }, `${c.table} ${c.action} → ${c.endpoint}`)));
      fromConfiguration.addEventListener("change", () => {
        const chosen = signed.find((c) => c.id === fromConfiguration.value);
        if (chosen) secret.value = chosen.secret;
      });
      fromField.hidden = false;
    },
    () => {},
  );
}

function hmacSection(secret) {
  const id = h("input", { name: "id", autocomplete: "off", spellcheck: "false", placeholder: "6284e24920ab9a8b363344dd" });
  const given = h("input", { name: "hmac", autocomplete: "off", spellcheck: "false" });
  const out = h("output", { class: "mono break" });
  const verdict = notice();
  const form = h(
    "form",
    { class: "card", novalidate: true, "aria-labelledby": "hmac-title" },
    h("h2", { id: "hmac-title" }, "hmac of a webhook id"),
    h("p", { class: "muted" }, "The body's hmac: HMAC-SHA256 of the id, keyed with the secret, in lowercase hex."),
    field("Webhook id", id),
    field("hmac from the body (optional, to compare)", given),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", disabled: !subtle() }, "Compute")),
    h("p", {}, "hmac: ", out),
    verdict,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const mac = await webhookHmac(secret.value, id.value.trim());
    out.textContent = mac;
    const compare = given.value.trim().toLowerCase();
    if (!compare) verdict.say(null);
    else if (compare === mac) verdict.say("The hmac matches: the webhook was signed with this secret.", "ok");
    else verdict.say("The hmac does not match this secret and id.", "error");
  });
  return form;
}

function signatureSection(secret) {
  const body = h("textarea", { name: "body", rows: "5", spellcheck: "false", placeholder: '{"id":"…","hmac":"…",…}' });
  const headers = h("textarea", {
    name: "headers",
    rows: "4",
    spellcheck: "false",
    placeholder: "webhook-id: 6284e24920ab9a8b363344dd\nwebhook-timestamp: 1700000000\nwebhook-signature: v1,…",
  });
  const verdict = notice();
  const bodyHmac = notice();
  const expected = h("output", { class: "mono break" });
  const form = h(
    "form",
    { class: "card", novalidate: true, "aria-labelledby": "signature-title" },
    h("h2", { id: "signature-title" }, "Standard Webhooks signature"),
    h("p", { class: "muted" }, "webhook-signature is v1, then the base64 of HMAC-SHA256 over {webhook-id}.{webhook-timestamp}.{body}, keyed with the secret."),
    field("Body, exactly as received", body),
    field("Headers, one per line (name: value)", headers),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", disabled: !subtle() }, "Check")),
    verdict,
    h("p", {}, "Expected signature: ", expected),
    bodyHmac,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const check = await checkStandardWebhook(secret.value, body.value, parseHeaders(headers.value));
    expected.textContent = check.expected ?? "";
    if (check.problem) verdict.say(check.problem, "error");
    else if (check.valid) {
      const late = Math.abs(check.skewS) > 300 ? ` Its timestamp is ${check.skewS} s old, though: receivers refuse more than 300 s.` : "";
      verdict.say(`The signature is valid.${late}`, "ok");
    } else verdict.say("The signature does not match this secret, body and headers.", "error");
    bodyHmac.say(await hmacOfBody(secret.value, body.value));
  });
  return form;
}

async function hmacOfBody(secret, text) {
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    return "The body is not JSON, so its hmac is not checked.";
  }
  if (typeof parsed?.id !== "string" || typeof parsed?.hmac !== "string") return null;
  const mac = await webhookHmac(secret, parsed.id);
  return mac === parsed.hmac.toLowerCase() ? "The body's hmac is valid too." : "The body's hmac does not match this secret.";
}

function samplesSection() {
  return h(
    "section",
    { class: "card", "aria-labelledby": "samples-title" },
    h("h2", { id: "samples-title" }, "Receiver code"),
    h("p", { class: "muted" }, "Check both signatures on the raw body, before parsing it; refuse a timestamp more than five minutes away."),
    SAMPLES.map((s) => [h("h3", {}, s.name), h("pre", { class: "code", tabindex: "0", "aria-label": `${s.name} receiver` }, h("code", {}, s.code))]),
  );
}
