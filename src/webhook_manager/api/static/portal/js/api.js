// The public API, as any client calls it: verifyUser at /api/ for a session key, then /v1/* with the headers
// clientCode and sessionKey. The session is kept for this tab only (sessionStorage): never in a URL or a cookie.

const SESSION = "webhook-manager.session";
/** Fired on window when the API refuses the session (any 401): the page goes back to logging in. */
export const SESSION_ENDED = "webhook-manager:session-ended";

// Erply's error codes of verifyUser, in words (docs/api.md).
const LOGIN_ERRORS = {
  1002: "Too many logins from your address at the moment; try again in a few seconds.",
  1016: "A value is not valid",
  1050: "Enter your username and password.",
  1051: "Wrong client code, username or password.",
  1052: "Too many failed logins: this user is blocked for a while. Try again later.",
  1054: "Your session has expired; log in again.",
  1055: "Your session is no longer valid; log in again.",
};

const FIELD_MESSAGE = /^([A-Za-z_][\w.[\]]*): ([\s\S]*)$/;

/** An answer of /v1/* other than 2xx: its status, the API's message and, for bad input, the field it names
 * (the API says "endpoint: must be …"). */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
    const named = FIELD_MESSAGE.exec(message);
    this.field = named ? named[1] : null;
    this.problem = named ? named[2] : message;
  }
}

/** verifyUser refused, with Erply's code and the message in words. */
export class LoginError extends Error {
  constructor(code, field) {
    const words = LOGIN_ERRORS[code] ?? (code ? "The log-in was refused" : "The service cannot be reached.");
    super(code === 1016 ? `${words}: ${field}.` : code ? `${words} (error ${code})` : words);
    this.code = code;
  }
}

/** The session of this tab ({clientCode, username, sessionKey}), or null. */
export function currentSession() {
  try {
    const kept = JSON.parse(sessionStorage.getItem(SESSION) ?? "null");
    return kept && kept.sessionKey ? kept : null;
  } catch {
    return null;
  }
}

/** Forget the session (log out, or after a 401). */
export function endSession() {
  sessionStorage.removeItem(SESSION);
}

function url(path, query) {
  const target = new URL(path, document.baseURI);
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== "") target.searchParams.set(key, String(value));
  }
  return target;
}

/** A JSON.parse reviver keeping integers past 2^53 (a rowID may be up to 2^63-1) as their exact digits, a
 * string, where the browser gives revivers the source text; elsewhere they stay rounded numbers. */
function exactIntegers(key, value, context) {
  if (typeof value === "number" && !Number.isSafeInteger(value) && /^-?\d+$/.test(context?.source ?? "")) {
    return context.source;
  }
  return value;
}

/** Log in with Erply's verifyUser (a form POST to /api/) and keep the session for this tab. */
export async function logIn(clientCode, username, password) {
  const form = new URLSearchParams({ request: "verifyUser", clientCode, username, password, doNotGenerateIdentityToken: "1" });
  let answer;
  try {
    const response = await fetch(url("api/"), { method: "POST", body: form, credentials: "omit", cache: "no-store" });
    answer = await response.json();
  } catch {
    throw new LoginError(0);
  }
  const code = answer?.status?.errorCode;
  if (code !== 0) throw new LoginError(code ?? -1, answer?.status?.errorField);
  const record = answer.records[0];
  const session = { clientCode, username: record.userName, sessionKey: record.sessionKey };
  sessionStorage.setItem(SESSION, JSON.stringify(session));
  return session;
}

/** Call /v1/*: ``body`` is sent as JSON (``raw`` as the JSON text it is); the answer's JSON is returned. Any
 * other answer than 2xx throws ApiError; a 401 also ends the session. */
export async function api(method, path, { query, body, raw, signal } = {}) {
  const session = currentSession();
  if (!session) {
    window.dispatchEvent(new CustomEvent(SESSION_ENDED));
    throw new ApiError(401, "not logged in");
  }
  const headers = { clientCode: session.clientCode, sessionKey: session.sessionKey };
  let payload;
  if (raw !== undefined || body !== undefined) {
    payload = raw !== undefined ? raw : JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(url(path, query), { method, headers, body: payload, signal, credentials: "omit", cache: "no-store" });
  } catch (exc) {
    if (signal?.aborted) throw exc;
    throw new ApiError(0, "The service cannot be reached.");
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text, exactIntegers) : null;
  } catch {
    data = null;
  }
  if (response.status === 401) {
    endSession();
    window.dispatchEvent(new CustomEvent(SESSION_ENDED));
    throw new ApiError(401, data?.error ?? "the session has ended");
  }
  if (!response.ok) throw new ApiError(response.status, data?.error ?? `HTTP ${response.status}`);
  return data;
}

/** The tables of the client's webhook-type catalogue (captured, then custom), for a <datalist>; [] when the
 * catalogue cannot be read. */
export async function catalogueTables(signal) {
  try {
    const types = await api("GET", "v1/webhook-type", { signal });
    const names = [...(types.captured ?? []), ...(types.custom ?? [])].map((t) => t.table);
    return [...new Set(names)];
  } catch (exc) {
    if (exc instanceof ApiError && exc.status !== 401) return [];
    throw exc;
  }
}

export const ACTIONS = ["insert", "update", "delete", "confirm"];
