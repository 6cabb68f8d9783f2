// The dashboard's shell: hash routes (#/configurations, #/deliveries, …), the navigation, logging out, and
// going back to log in when the session ends, keeping where the user was (the hash) to return to after.

import { currentSession, endSession, SESSION_ENDED } from "./api.js";
import * as configurations from "./views/configurations.js";
import * as deliveries from "./views/deliveries.js";
import * as health from "./views/health.js";
import * as login from "./views/login.js";
import * as testEvent from "./views/test-event.js";
import * as verify from "./views/verify.js";

const ROUTES = {
  "/login": login,
  "/configurations": configurations,
  "/deliveries": deliveries,
  "/health": health,
  "/test": testEvent,
  "/verify": verify,
};
const HOME = "/configurations";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
const whoName = document.getElementById("who-name");
const skip = document.getElementById("skip");
let running = null; // the AbortController of the view on screen
let first = true;

function where() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const mark = raw.indexOf("?");
  const path = mark < 0 ? raw : raw.slice(0, mark);
  return { raw, path, params: new URLSearchParams(mark < 0 ? "" : raw.slice(mark + 1)) };
}

/** A hash the page may return to after logging in: one of its own routes, not the log-in page. */
function safeNext(next) {
  if (!next) return HOME;
  const path = next.split("?")[0];
  return ROUTES[path] && path !== "/login" ? next : HOME;
}

function toLogin(reason) {
  const { raw, path } = where();
  const query = new URLSearchParams();
  if (path !== "/login" && path !== "/") query.set("next", raw);
  if (reason) query.set("reason", reason);
  const text = query.toString();
  location.hash = `#/login${text ? `?${text}` : ""}`;
}

function showChrome(path, session) {
  nav.hidden = !session;
  skip.hidden = !session;
  who.hidden = !session;
  whoName.textContent = session ? `${session.username} · client ${session.clientCode}` : "";
  for (const link of nav.querySelectorAll("a")) {
    if (link.getAttribute("href") === `#${path}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function render() {
  running?.abort();
  running = null;
  const { path, params } = where();
  const session = currentSession();
  if (!session && path !== "/login") return toLogin(null);
  if (session && path === "/login") {
    location.hash = `#${safeNext(params.get("next"))}`;
    return;
  }
  const view = ROUTES[path];
  if (!view) {
    location.hash = `#${HOME}`;
    return;
  }
  showChrome(path, session);
  document.title = `${view.title} · webhook-manager`;
  running = new AbortController();
  main.replaceChildren();
  view.render(main, {
    params,
    session,
    signal: running.signal,
    loggedIn: (next) => {
      location.hash = `#${safeNext(next)}`;
    },
  });
  if (!first) main.focus({ preventScroll: false });
  first = false;
}

window.addEventListener("hashchange", render);
window.addEventListener(SESSION_ENDED, () => {
  if (where().path !== "/login") toLogin("expired");
});
document.getElementById("logout").addEventListener("click", () => {
  endSession();
  running?.abort();
  location.hash = "#/login?reason=logged-out";
});
skip.addEventListener("click", () => main.focus());
render();
