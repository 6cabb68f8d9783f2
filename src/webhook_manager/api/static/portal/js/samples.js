// Short receiver code that checks both signatures of a webhook (docs/payload.md), shown as text on the Verify
// page. Each takes the raw body exactly as received, the request's headers (names in lower case) and the secret.

export const SAMPLES = [
  {
    name: "Python",
    code: `import base64, hashlib, hmac, json, time


def verify(raw_body: bytes, headers: dict[str, str], secret: str) -> bool:
    key = secret.encode("utf-8")
    body = json.loads(raw_body)
    expected_hmac = hmac.new(key, body["id"].encode("ascii"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected_hmac, body["hmac"]):
        return False
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > 300:
        return False
    signed = f"{msg_id}.{timestamp}.".encode() + raw_body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, s) for s in headers["webhook-signature"].split())
`,
  },
  {
    name: "Node.js",
    code: `const crypto = require("node:crypto");

// rawBody: a Buffer of the body as received (e.g. express.raw({ type: "application/json" }))
function verify(rawBody, headers, secret) {
  const body = JSON.parse(rawBody);
  const hmac = crypto.createHmac("sha256", secret).update(body.id).digest("hex");
  if (!safeEqual(hmac, body.hmac)) return false;
  const id = headers["webhook-id"], timestamp = headers["webhook-timestamp"];
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false;
  const signed = Buffer.concat([Buffer.from(\`\${id}.\${timestamp}.\`), rawBody]);
  const expected = "v1," + crypto.createHmac("sha256", secret).update(signed).digest("base64");
  return headers["webhook-signature"].split(" ").some((given) => safeEqual(given, expected));
}

function safeEqual(a, b) {
  const x = Buffer.from(a), y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}
`,
  },
  {
    name: "PHP",
    code: `<?php
// $rawBody = file_get_contents('php://input');
function verify(string $rawBody, array $headers, string $secret): bool {
    $body = json_decode($rawBody, true);
    if (!hash_equals(hash_hmac('sha256', $body['id'], $secret), $body['hmac'])) {
        return false;
    }
    $id = $headers['webhook-id'];
    $timestamp = $headers['webhook-timestamp'];
    if (abs(time() - (int) $timestamp) > 300) {
        return false;
    }
    $expected = 'v1,' . base64_encode(hash_hmac('sha256', "$id.$timestamp.$rawBody", $secret, true));
    foreach (explode(' ', $headers['webhook-signature']) as $given) {
        if (hash_equals($expected, $given)) {
            return true;
        }
    }
    return false;
}
`,
  },
];
