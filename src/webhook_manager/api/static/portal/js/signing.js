// The two signatures of a webhook (docs/payload.md), computed in the browser with WebCrypto, and new secrets.

const utf8 = new TextEncoder();

/** WebCrypto's subtle API, or null where the browser withholds it (a page not on HTTPS or localhost). */
export function subtle() {
  return globalThis.crypto?.subtle ?? null;
}

async function hmacSha256(secret, message) {
  // HMAC pads a short key with zero bytes, so an empty secret is the key of one zero byte (WebCrypto refuses
  // an empty key).
  const raw = secret === "" ? new Uint8Array(1) : utf8.encode(secret);
  const key = await subtle().importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await subtle().sign("HMAC", key, typeof message === "string" ? utf8.encode(message) : message));
}

/** Erply's hmac: lowercase hex HMAC-SHA256 of the webhook id, keyed with the secret's UTF-8 bytes. */
export async function webhookHmac(secret, id) {
  const mac = await hmacSha256(secret, id);
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The Standard Webhooks signature: "v1," and the base64 of HMAC-SHA256 over "{id}.{timestamp}.{body}". */
export async function standardSignature(secret, id, timestamp, body) {
  const mac = await hmacSha256(secret, `${id}.${timestamp}.${body}`);
  return `v1,${btoa(String.fromCharCode(...mac))}`;
}

/** Headers pasted as "name: value" lines, names in lower case. */
export function parseHeaders(text) {
  const headers = {};
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return headers;
}

/** Check a received body and its webhook-* headers: {valid, expected, problem, skewS}. */
export async function checkStandardWebhook(secret, body, headers) {
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  const signatures = headers["webhook-signature"];
  if (!id || !timestamp || !signatures) {
    return { valid: false, problem: "The headers webhook-id, webhook-timestamp and webhook-signature are all needed." };
  }
  if (!/^\d+$/.test(timestamp)) return { valid: false, problem: "webhook-timestamp must be Unix seconds." };
  const expected = await standardSignature(secret, id, timestamp, body);
  const valid = signatures.split(" ").some((given) => given === expected);
  return { valid, expected, skewS: Math.round(Date.now() / 1000 - Number(timestamp)) };
}

/** A new random secret: 24 bytes from crypto.getRandomValues, as 32 URL-safe characters. */
export function newSecret() {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_");
}
