// Log in: Erply's verifyUser, its error codes in words.

import { logIn } from "../api.js";
import { field, h, notice } from "../dom.js";

export const title = "Log in";

const REASONS = {
  expired: "Your session has ended. Log in again to go on where you were.",
  "logged-out": "You have logged out.",
};

export function render(root, { params, loggedIn }) {
  const clientCode = h("input", { name: "clientCode", autocomplete: "organization", required: true, spellcheck: "false" });
  const username = h("input", { name: "username", autocomplete: "username", required: true, spellcheck: "false" });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit", class: "primary" }, "Log in");
  const problem = notice("alert");
  const reason = notice();
  reason.say(REASONS[params.get("reason")]);

  const form = h(
    "form",
    { class: "card narrow", novalidate: true, "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Log in"),
    reason,
    field("Client code", clientCode),
    field("Username", username),
    field("Password", password),
    problem,
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.say(null);
    submit.disabled = true;
    try {
      await logIn(clientCode.value.trim(), username.value, password.value);
      loggedIn(params.get("next"));
    } catch (exc) {
      problem.say(exc.message, "error");
      password.select();
    } finally {
      submit.disabled = false;
    }
  });
  root.append(form);
}
