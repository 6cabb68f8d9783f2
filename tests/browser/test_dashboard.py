"""The dashboard in a real Chromium against the real service (its pipeline running, an SQLite store) and a real
receiver: logging in and out, configurations, test events, deliveries and resend, endpoint health, verifying,
hostile values rendered as text, sessions ending, clients kept apart, phone width and the keyboard."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.conftest import LiveServer, create_account, serving, sqlite_file, verify_user
from tests.receiver import ThreadedReceiver
from webhook_manager.settings import Settings

Shot = Callable[[Page, str], Path]
PASSWORD = "correct horse battery"
SESSION = "webhook-manager.session"  # the sessionStorage key of the page (js/api.js)
XSS_MARKUP = ["<script>window.__xss=1</script>", '"><img src=x onerror=window.__xss=1>']

# the pipeline, the page's refresh (5 s) and a resend's round trip can take a few seconds together
expect.set_options(timeout=15_000)


def add_account(settings: Settings, code: str, username: str) -> None:
    """create_account on a thread of its own: Playwright's sync API keeps an event loop running on this one."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(create_account, settings, code, username, PASSWORD).result()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'wm.db'}",
        allow_private_endpoints=True,
        batch_linger_ms=0,
        retry_delay_s=0,
        retries=0,
        login_max_failures=2,
    )


@pytest.fixture
def live(settings: Settings) -> Iterator[LiveServer]:
    add_account(settings, "100", "alice")
    with serving(settings, run_pipeline=True) as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[ThreadedReceiver]:
    started = ThreadedReceiver()
    yield started
    started.stop()


class Api:
    """The API as a client calls it with curl, for what a test sets up behind the page."""

    def __init__(self, live: LiveServer, code: str = "100", username: str = "alice") -> None:
        self.http = httpx.Client(base_url=live.url, timeout=10)
        answer = verify_user(self.http, code, username, PASSWORD)
        assert answer["status"]["errorCode"] == 0, answer
        self.http.headers.update({"clientCode": code, "sessionKey": answer["records"][0]["sessionKey"]})

    def call(self, method: str, path: str, body: Any = None) -> Any:
        answer = self.http.request(method, path, content=None if body is None else orjson.dumps(body))
        assert answer.status_code == 200, answer.text
        return answer.json()

    def configure(self, endpoint: str, table: str = "product", action: str = "insert", secret: str = "s3cret") -> Any:
        body = {"table": table, "action": action, "endpoint": endpoint, "secret": secret}
        return self.call("POST", "/v1/webhook-configuration", body)

    def record(self, *data: Any, table: str = "product", action: str = "insert") -> None:
        items = [{"rowId": n, "data": d} for n, d in enumerate(data, start=1)]
        self.call("POST", "/v1/event", {"table": table, "action": action, "items": items})


@pytest.fixture
def api(live: LiveServer) -> Iterator[Api]:
    client = Api(live)
    yield client
    client.http.close()


def log_in(page: Page, code: str = "100", username: str = "alice", password: str = PASSWORD) -> None:
    page.get_by_label("Client code").fill(code)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def open_logged_in(page: Page, live: LiveServer, route: str = "/configurations", **who: str) -> None:
    page.goto(f"{live.url}/#{route}")
    log_in(page, **who)
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    expect(page).to_have_url(re.compile(re.escape(f"#{route}") + "$"))


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()


def field_error(page: Page, label: str) -> Any:
    """The error shown at a form field (its aria-errormessage, the line under it)."""
    control = page.get_by_label(label, exact=True)
    return page.locator(f"#{control.get_attribute('id')}-error")


def no_script_ran(page: Page) -> None:
    assert page.evaluate("window.__xss") is None  # undefined comes back as None
    assert page.locator("main img").count() == 0


def test_log_in_says_what_is_wrong_in_words_then_logs_in_and_out(page: Page, live: LiveServer, shot: Shot) -> None:
    page.goto(live.url + "/")
    expect(page).to_have_title("Log in · webhook-manager")
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
    log_in(page, password="not the password")
    expect(page.get_by_role("alert")).to_have_text("Wrong client code, username or password. (error 1051)")
    shot(page, "login-error")

    # a (client, username) with login_max_failures (2) failures is blocked, whatever the password
    log_in(page, username="mallory", password="guess one")
    log_in(page, username="mallory", password="guess two")
    log_in(page, username="mallory", password="guess three")
    expect(page.get_by_role("alert")).to_contain_text("Too many failed logins: this user is blocked for a while")

    log_in(page)
    expect(page.get_by_role("heading", name="Configurations", level=1)).to_be_visible()
    expect(page.get_by_text("alice · client 100")).to_be_visible()
    session = page.evaluate(f"JSON.parse(sessionStorage.getItem('{SESSION}'))")
    assert session["clientCode"] == "100"
    assert len(session["sessionKey"]) == 48
    assert page.evaluate("document.cookie") == ""
    assert page.evaluate("localStorage.length") == 0
    assert session["sessionKey"] not in page.url

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_text("You have logged out.")).to_be_visible()
    assert page.evaluate(f"sessionStorage.getItem('{SESSION}')") is None
    page.goto(f"{live.url}/#/deliveries")  # without a session every page is the log-in page
    expect(page.get_by_role("button", name="Log in")).to_be_visible()


def test_keyboard_reaches_the_log_in_fields_and_enter_submits(page: Page, live: LiveServer) -> None:
    page.goto(live.url + "/")
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    for label in ("Client code", "Username", "Password"):
        page.keyboard.press("Tab")
        expect(page.get_by_label(label)).to_be_focused()
        page.keyboard.type({"Client code": "100", "Username": "alice", "Password": PASSWORD}[label])
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Log in")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")  # in the password field: submits the form
    expect(page.get_by_role("heading", name="Configurations", level=1)).to_be_visible()
    # the page has the focus now; back from it: logging out, then the navigation, with the focus showing
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("button", name="Log out")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    link = page.get_by_role("navigation", name="Main").get_by_role("link", name="Verify")
    expect(link).to_be_focused()
    assert link.evaluate("e => getComputedStyle(e).outlineStyle") == "solid"
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Verify a webhook", level=1)).to_be_visible()
    # from the top of a page: the skip link first, straight to the page's own controls
    page.reload()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Skip to content")).to_be_focused()
    expect(page.get_by_role("button", name="Skip to content")).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Secret", exact=True)).to_be_focused()


def test_configurations_are_created_with_field_errors_edited_disabled_and_removed(
    page: Page, live: LiveServer, api: Api, receiver: ThreadedReceiver, shot: Shot
) -> None:
    api.record({"total": 1}, table="order", action="confirm")  # no configuration: dropped, but in the catalogue
    open_logged_in(page, live)
    page.get_by_role("button", name="New configuration").click()
    expect(page.locator("datalist option[value='order']")).to_have_count(1)  # offered for the table field
    form = page.locator("form", has=page.get_by_role("heading", name="New configuration"))
    endpoint = page.get_by_label("Endpoint", exact=True)

    # an empty table: the API's error, at the table field
    endpoint.fill("ftp://x")
    form.get_by_role("button", name="Save").click()
    expect(field_error(page, "Table")).to_have_text("table must be 1 to 64 characters of A-Z a-z 0-9 _ . -")
    expect(page.get_by_label("Table", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Table", exact=True)).to_be_focused()

    # a table, but an ftp endpoint: the error moves to the endpoint field
    page.get_by_label("Table", exact=True).fill("product")
    form.get_by_role("button", name="Save").click()
    expect(field_error(page, "Endpoint")).to_have_text("endpoint must be an absolute http:// or https:// URL")
    expect(endpoint).to_have_accessible_error_message("endpoint must be an absolute http:// or https:// URL")
    expect(field_error(page, "Table")).to_be_hidden()
    shot(page, "configuration-field-error")

    endpoint.fill(receiver.url("/ok/shop"))
    secret = page.get_by_label("Secret", exact=True)
    expect(secret).to_have_attribute("type", "password")
    page.get_by_role("button", name="Generate").click()
    generated = secret.input_value()
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", generated), generated
    page.get_by_role("button", name="Generate").click()
    assert secret.input_value() != generated
    secret.fill("mySecretWord")
    form.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Saved: product insert")).to_be_visible()

    row = page.get_by_role("row").filter(has_text=receiver.url("/ok/shop"))
    expect(row).to_contain_text("enabled")
    expect(row).to_contain_text("hidden")
    expect(row.get_by_text("mySecretWord")).to_be_hidden()  # the secret shows only when asked for
    row.get_by_role("button", name="Show").click()
    expect(row.get_by_text("mySecretWord")).to_be_visible()
    shot(page, "configurations")

    row.get_by_role("button", name="Edit").click()
    page.get_by_label("Action", exact=True).select_option("update")
    page.get_by_role("button", name="Save").click()
    row = page.get_by_role("row").filter(has_text=receiver.url("/ok/shop"))
    expect(row).to_contain_text("update")

    row.get_by_role("button", name="Disable").click()
    expect(row).to_contain_text("disabled")
    row.get_by_role("button", name="Enable").click()
    expect(row).to_contain_text("enabled")

    row.get_by_role("button", name="Remove").click()
    row.get_by_role("button", name="Cancel").click()
    expect(row).to_be_visible()
    row.get_by_role("button", name="Remove").click()
    row.get_by_role("button", name="Yes, remove").click()
    expect(page.get_by_text("No configurations yet.")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="is removed")).to_be_visible()


def test_a_test_event_goes_out_and_shows_sent_with_its_payload_and_try(
    page: Page, context: BrowserContext, live: LiveServer, api: Api, receiver: ThreadedReceiver, shot: Shot
) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    configuration = api.configure(receiver.url("/ok/shop"), table="product", action="insert")
    open_logged_in(page, live, "/test")
    expect(page.get_by_label("Configuration", exact=True)).to_have_value(configuration["id"])
    page.get_by_label("Row id").fill("123456789012345678")  # past 2^53: goes as typed
    page.get_by_label("Data").fill('{"name": "tea", "price": 1.5}')
    shot(page, "test-event")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("status")).to_contain_text("Recorded 1 event of product insert")
    body = receiver.wait_for(1, "/ok/shop")[0]
    assert body["items"][0]["rowId"] == 123456789012345678
    assert body["items"][0]["data"] == {"name": "tea", "price": 1.5}

    page.get_by_role("link", name="See it in Deliveries").click()
    row = page.get_by_role("row").filter(has_text=body["id"])
    expect(row).to_contain_text("sent")
    made = row.locator("time").first  # local time, UTC on hover
    expect(made).to_have_attribute("title", re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \(UTC\)$"))
    assert made.inner_text() == page.evaluate("iso => new Date(iso).toLocaleString()", made.get_attribute("datetime"))
    row.get_by_role("button", name="Details").click()
    detail = page.get_by_role("region", name="Webhook")
    expect(detail.get_by_role("heading", level=2)).to_contain_text(body["id"])
    tries = detail.get_by_role("table", name="Tries")
    expect(tries.get_by_role("row")).to_have_count(2)  # the head and one try
    expect(tries).to_contain_text("200")
    payload = detail.get_by_label("Payload", exact=True)
    expect(payload).to_contain_text('"rowId": 123456789012345678')
    expect(payload).to_contain_text('"name": "tea"')
    detail.get_by_role("button", name="Copy").click()
    expect(detail.get_by_text("Copied: the body exactly as sent.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == receiver.received[0].body.decode()
    detail.get_by_label("Show exactly as sent").check()
    expect(payload).to_have_text(receiver.received[0].body.decode())

    # the events of the table and action
    events = page.get_by_role("form", name="Events of a table and action")
    events.get_by_label("Table").fill("product")
    events.get_by_role("button", name="Show events").click()
    expect(page.get_by_role("table", name="Events of product insert")).to_contain_text("123456789012345678")
    expect(page.get_by_role("table", name="Events of product insert")).to_contain_text("processed")


def test_a_failed_webhook_is_resent_and_shows_sent_and_the_endpoints_health(
    page: Page, live: LiveServer, api: Api, receiver: ThreadedReceiver, shot: Shot
) -> None:
    # /flaky/1 answers 500 to each webhook's first try, then 200; with retries=0 the first try ends it failed
    api.configure(receiver.url("/ok/shop"))
    api.configure(receiver.url("/flaky/1"))
    api.record({"name": "tea"})
    receiver.wait_for(2)  # before the next call, so that the two calls make two webhooks each
    api.record({"name": "coffee"}, {"name": "milk"})
    receiver.wait_for(4)
    open_logged_in(page, live, "/deliveries")
    failed = page.get_by_role("row").filter(has_text="HTTP 500")
    expect(failed).to_have_count(2)
    expect(page.get_by_role("row").filter(has_text="sent")).to_have_count(2)
    shot(page, "deliveries")

    page.get_by_label("Status").select_option("failed")
    expect(page).to_have_url(re.compile(r"#/deliveries\?status=failed$"))
    expect(page.get_by_role("row").filter(has_text=receiver.url("/flaky/1"))).to_have_count(2)
    first = failed.first
    webhook_id = first.locator("td").first.inner_text()
    first.get_by_role("button", name="Details").click()
    detail = page.get_by_role("region", name="Webhook")
    expect(detail.get_by_role("table", name="Tries")).to_contain_text("500")
    detail.get_by_role("button", name="Resend").click()
    expect(page.get_by_text(f"Webhook {webhook_id} is resent")).to_be_visible()
    expect(detail.get_by_role("definition").filter(has_text=re.compile("^sent$"))).to_be_visible()
    expect(detail.get_by_role("table", name="Tries").get_by_role("row")).to_have_count(3)  # 500, then 200
    shot(page, "deliveries-resent")
    page.get_by_label("Status").select_option("sent")
    expect(page.get_by_role("row").filter(has_text=webhook_id)).to_contain_text("HTTP 500")  # kept after success

    nav(page, "Endpoint health")
    ms = re.compile(r"^\d+ ms$")
    flaky = page.get_by_role("row").filter(has_text=receiver.url("/flaky/1")).get_by_role("cell")
    expect(flaky).to_have_text([receiver.url("/flaky/1"), "3", "33.3 %", ms, ms, re.compile("HTTP 500$")])
    ok = page.get_by_role("row").filter(has_text=receiver.url("/ok/shop")).get_by_role("cell")
    expect(ok).to_have_text([receiver.url("/ok/shop"), "2", "100.0 %", ms, ms, "none"])
    expect(page.get_by_text("In the last 60 minutes: 3 sent, 1 failed.")).to_be_visible()
    expect(page.locator(".chart canvas")).to_be_visible()
    shot(page, "health")


def test_a_long_delivery_log_is_paged(page: Page, live: LiveServer, api: Api, receiver: ThreadedReceiver) -> None:
    for n in range(15):
        api.configure(receiver.url(f"/ok/order-{n}"), table="order")
    for n in range(12):
        api.configure(receiver.url(f"/ok/tag-{n}"), table="tag")
    api.record({"n": 1}, table="order")
    api.record({"n": 2}, table="tag")
    receiver.wait_for(27)
    open_logged_in(page, live, "/deliveries")
    rows = page.get_by_role("table", name="Webhooks, newest first").get_by_role("row")
    expect(rows).to_have_count(1 + 25)  # the head and a page
    expect(page.get_by_role("button", name="Newer")).to_be_disabled()
    first_page = rows.all_inner_texts()
    page.get_by_role("button", name="Older").click()
    expect(rows).to_have_count(1 + 2)
    expect(page).to_have_url(re.compile(r"#/deliveries\?before=[0-9a-f]{24}$"))
    expect(page.get_by_role("button", name="Older")).to_be_disabled()
    assert not set(rows.all_inner_texts()[1:]) & set(first_page[1:])
    page.get_by_role("button", name="Newer").click()
    expect(rows).to_have_count(1 + 25)
    expect(page).to_have_url(re.compile(r"#/deliveries$"))
    page.get_by_label("Table", exact=True).first.fill("tag")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1 + 12)
    expect(page.get_by_role("button", name="Older")).to_be_disabled()


def test_verify_computes_both_signatures_of_a_real_webhook(
    page: Page, live: LiveServer, api: Api, receiver: ThreadedReceiver, shot: Shot
) -> None:
    api.configure(receiver.url("/ok/shop"), secret="mySecretWord")
    api.record({"name": "tea"})
    receiver.wait_for(1)
    received = receiver.received[0]
    body = received.json
    open_logged_in(page, live, "/verify")
    choice = f"product insert → {receiver.url('/ok/shop')}"
    page.get_by_label("Or take the secret of a configuration").select_option(label=choice)
    expect(page.get_by_label("Secret", exact=True)).to_have_value("mySecretWord")

    page.get_by_label("Webhook id", exact=True).fill("6284e24920ab9a8b363344dd")  # docs/payload.md's test vector
    page.get_by_role("button", name="Compute").click()
    expect(page.locator("output").first).to_have_text(
        "49bd805ee40c169780f7d0ce68a9d89ac29de9fdfc876d1d2ba3d6802b162c72"
    )
    page.get_by_label("Webhook id", exact=True).fill(body["id"])
    page.get_by_label("hmac from the body").fill(body["hmac"])
    page.get_by_role("button", name="Compute").click()
    expect(page.get_by_text("The hmac matches")).to_be_visible()

    page.get_by_label("Body, exactly as received").fill(received.body.decode())
    headers = "\n".join(f"{k}: {received.headers[k]}" for k in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    page.get_by_label("Headers, one per line").fill(headers)
    page.get_by_role("button", name="Check").click()
    expect(page.get_by_text("The signature is valid.")).to_be_visible()
    expect(page.get_by_text("The body's hmac is valid too.")).to_be_visible()
    page.get_by_label("Body, exactly as received").fill(received.body.decode().replace("tea", "tee"))
    page.get_by_role("button", name="Check").click()
    expect(page.get_by_text("The signature does not match")).to_be_visible()
    for sample in ("Python", "Node.js", "PHP"):
        expect(page.get_by_label(f"{sample} receiver")).to_contain_text("webhook-signature")
    shot(page, "verify")


def test_hostile_values_show_as_text_and_run_nothing(
    page: Page, live: LiveServer, api: Api, receiver: ThreadedReceiver, shot: Shot
) -> None:
    # a table cannot hold markup (A-Z a-z 0-9 _ . -); an endpoint's query and a secret can, and events' data can
    endpoint = receiver.url('/ok/x?"><img/src=x/onerror=window.__xss=1>')
    api.configure(endpoint, secret='<img src=x onerror="window.__xss=1">')
    api.record(*XSS_MARKUP)
    receiver.wait_for(1)
    open_logged_in(page, live)
    row = page.get_by_role("row").filter(has_text=endpoint)
    expect(row).to_be_visible()
    row.get_by_role("button", name="Show").click()
    expect(row.get_by_text('<img src=x onerror="window.__xss=1">')).to_be_visible()
    no_script_ran(page)
    shot(page, "xss-configurations")

    nav(page, "Deliveries")
    row = page.get_by_role("row").filter(has_text=endpoint)
    expect(row).to_contain_text("sent")
    row.get_by_role("button", name="Details").click()
    payload = page.get_by_label("Payload", exact=True)
    for markup in XSS_MARKUP:
        expect(payload).to_contain_text(markup.replace('"', '\\"'))  # as JSON strings
    expect(page.get_by_role("region", name="Webhook")).to_contain_text(endpoint)
    no_script_ran(page)
    shot(page, "xss-deliveries")

    nav(page, "Endpoint health")
    expect(page.get_by_role("row").filter(has_text=endpoint)).to_be_visible()
    nav(page, "Send a test event")
    expect(page.get_by_label("Configuration", exact=True)).to_contain_text(endpoint)
    nav(page, "Verify")
    expect(page.get_by_label("Or take the secret of a configuration")).to_contain_text(endpoint)
    no_script_ran(page)


def test_an_ended_session_goes_back_to_log_in_and_then_to_where_the_user_was(
    page: Page, live: LiveServer, api: Api, receiver: ThreadedReceiver
) -> None:
    api.configure(receiver.url("/ok/shop"))
    api.record({"name": "tea"})
    receiver.wait_for(1)
    open_logged_in(page, live, "/deliveries")
    page.get_by_label("Status").select_option("sent")
    expect(page.get_by_role("row").filter(has_text="sent")).to_have_count(1)

    # the session expires in the store (as time passing would do); the page's next refresh hears 401
    with sqlite3.connect(sqlite_file(live.settings)) as db:
        assert db.execute("UPDATE sessions SET expires_at = 1").rowcount == 2  # the page's and the test's
    expect(page.get_by_text("Your session has ended. Log in again to go on where you were.")).to_be_visible()
    assert page.evaluate(f"sessionStorage.getItem('{SESSION}')") is None
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()

    log_in(page)
    expect(page).to_have_url(re.compile(r"#/deliveries\?status=sent$"))
    expect(page.get_by_label("Status")).to_have_value("sent")
    expect(page.get_by_role("row").filter(has_text=receiver.url("/ok/shop"))).to_have_count(1)


def test_a_client_sees_none_of_another_clients_configurations_or_webhooks(
    page: Page, live: LiveServer, api: Api, receiver: ThreadedReceiver, shot: Shot
) -> None:
    add_account(live.settings, "200", "bob")
    api.configure(receiver.url("/ok/client-a"))
    api.record({"name": "tea"})
    receiver.wait_for(1)
    open_logged_in(page, live, code="200", username="bob")
    expect(page.get_by_text("No configurations yet.")).to_be_visible()
    nav(page, "Deliveries")
    expect(page.get_by_text("No webhooks.")).to_be_visible()
    nav(page, "Endpoint health")
    expect(page.get_by_text("No tries in the last 60 minutes.")).to_be_visible()
    expect(page.get_by_text("In the last 60 minutes: 0 sent, 0 failed.")).to_be_visible()
    assert "client-a" not in page.content()
    shot(page, "client-b")


def test_the_page_is_sent_with_a_strict_content_security_policy(context: BrowserContext, live: LiveServer) -> None:
    page = context.new_page()  # not the `page` fixture: the violation below is logged as a console error
    answer = page.goto(live.url + "/")
    assert answer is not None
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    # the policy is in force: an inline script the page did not bring is refused (and logged, so not by the page)
    assert page.evaluate("""() => new Promise((done) => {
        document.addEventListener("securitypolicyviolation", (e) => done(e.violatedDirective), {once: true});
        const s = document.createElement("script"); s.textContent = "window.__inline = 1"; document.body.append(s);
    })""").startswith("script-src")
    assert page.evaluate("window.__inline") is None


def test_at_phone_width_the_navigation_shows_and_nothing_overflows(
    page: Page, live: LiveServer, api: Api, receiver: ThreadedReceiver, shot: Shot
) -> None:
    api.configure(receiver.url("/ok/a-rather-long-endpoint-path-that-has-to-wrap-on-a-phone"))
    api.record({"name": "tea"})
    receiver.wait_for(1)
    page.set_viewport_size({"width": 375, "height": 800})
    open_logged_in(page, live)
    navigation = page.get_by_role("navigation", name="Main")
    for name in ("Configurations", "Deliveries", "Endpoint health", "Send a test event", "Verify"):
        expect(navigation.get_by_role("link", name=name)).to_be_in_viewport()
    expect(page.get_by_role("button", name="Log out")).to_be_in_viewport()
    shot(page, "phone-configurations")
    for name in ("Configurations", "Deliveries", "Endpoint health", "Send a test event", "Verify"):
        nav(page, name)
        expect(page.get_by_text("Loading…")).to_have_count(0)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, name
    nav(page, "Deliveries")
    expect(page.get_by_role("row").filter(has_text="sent")).to_be_visible()
    shot(page, "phone-deliveries")


def test_the_health_page_says_not_available_when_the_service_lacks_its_calls(page: Page, live: LiveServer) -> None:
    # a service without GET /v1/endpoint-health and /v1/webhook-stats (an older version) answers 404
    for call in ("endpoint-health", "webhook-stats"):
        page.route(
            f"**/v1/{call}?*",
            lambda route: route.fulfill(status=404, content_type="application/json", body='{"error": "Not Found"}'),
        )
    open_logged_in(page, live, "/health")
    expect(page.get_by_text("Not available: this service does not report it yet.")).to_have_count(2)
    nav(page, "Deliveries")  # the rest of the dashboard goes on
    expect(page.get_by_text("No webhooks.")).to_be_visible()
