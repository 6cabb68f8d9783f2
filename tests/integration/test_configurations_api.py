"""The configuration API over real HTTP on a real SQLite file (docs/api.md, Erply's Swagger v1.18.3)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.clock import FakeClock
from tests.conftest import Client, LiveServer, create_account, run, serving, verify_user
from tests.swagger import problems, strict_definitions
from webhook_manager import accounts
from webhook_manager.domain.model import Session
from webhook_manager.domain.timefmt import now_ms
from webhook_manager.settings import Settings
from webhook_manager.store import open_store

URL = "/v1/webhook-configuration"
VALID: dict[str, Any] = {"table": "product", "action": "insert", "endpoint": "https://example.com/hook", "secret": "s"}
INPUT_FIELDS = ("table", "action", "endpoint", "secret", "disabled")
ID = re.compile(r"^[0-9a-f]{24}$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
UNKNOWN_ID = "0123456789abcdef01234567"
MAX_BODY = 64 * 1024


@pytest.fixture(scope="module")
def definitions() -> dict[str, Any]:
    return strict_definitions()


def in_grace(configuration: Any) -> None:
    """Take out the one extension key an Erply call can bring, ``previousSecretUntil``: a PUT that replaced the
    secret shows it for ``secret_grace_h`` hours (docs/api.md); every other key is Erply's, and nothing more."""
    if isinstance(configuration, dict) and "previousSecretUntil" in configuration:
        assert TIME.match(configuration.pop("previousSecretUntil")), configuration


class Check:
    """Reads an answer, asserting its status and its strict conformance to a Swagger definition."""

    def __init__(self, definitions: dict[str, Any]) -> None:
        self.definitions = definitions

    def _json(self, answer: httpx.Response, status: int, node: dict[str, Any]) -> Any:
        where = f"{answer.request.method} {answer.request.url.path}"
        assert answer.status_code == status, (where, answer.status_code, answer.text)
        assert answer.headers["content-type"].startswith("application/json"), where
        body = orjson.loads(answer.content)
        for one in body if isinstance(body, list) else [body]:
            in_grace(one)
        found = problems(self.definitions, node, body)
        assert not found, (where, found)
        return body

    def config(self, answer: httpx.Response) -> dict[str, Any]:
        body: dict[str, Any] = self._json(answer, 200, {"$ref": "#/definitions/models.WebhookConfiguration"})
        assert ID.match(body["id"]), body
        assert TIME.match(body["createdat"]), body
        assert TIME.match(body["updatedat"]), body
        assert body["updatedat"] >= body["createdat"], body
        return body

    def configs(self, answer: httpx.Response) -> list[dict[str, Any]]:
        node = {"type": "array", "items": {"$ref": "#/definitions/models.WebhookConfiguration"}}
        body: list[dict[str, Any]] = self._json(answer, 200, node)
        for one in body:
            assert ID.match(one["id"]), one
            assert TIME.match(one["createdat"]), one
            assert TIME.match(one["updatedat"]), one
        return body

    def removed(self, answer: httpx.Response) -> None:
        body = self._json(answer, 200, {"$ref": "#/definitions/models.OutputOK"})
        assert body == {"message": "configuration removed"}

    def error(self, answer: httpx.Response, status: int) -> str:
        body = self._json(answer, status, {"$ref": "#/definitions/models.OutputError"})
        assert body["error"].strip(), body
        return str(body["error"])


@pytest.fixture
def check(definitions: dict[str, Any]) -> Check:
    return Check(definitions)


def send(
    http: httpx.Client, method: str, who: Client | dict[str, str], id_: str = "", body: Any = None
) -> httpx.Response:
    """One call as ``who`` (a client, or raw headers); bytes are sent as they are, anything else as JSON."""
    headers = dict(who.headers if isinstance(who, Client) else who)
    content = None if body is None else body if isinstance(body, bytes) else orjson.dumps(body)
    if content is not None:
        headers["Content-Type"] = "application/json"
    return http.request(method, f"{URL}/{id_}" if id_ else URL, headers=headers, content=content)


def create(http: httpx.Client, check: Check, who: Client, **changes: Any) -> dict[str, Any]:
    return check.config(send(http, "POST", who, body={**VALID, **changes}))


def listing(http: httpx.Client, check: Check, who: Client) -> list[dict[str, Any]]:
    return check.configs(send(http, "GET", who))


def fetch(http: httpx.Client, check: Check, who: Client, id_: str) -> dict[str, Any]:
    return check.config(send(http, "GET", who, id_))


def names(field: str, message: str) -> bool:
    return re.search(rf"\b{re.escape(field)}\b", message) is not None


def stored_key(settings: Settings, code: str, expires_in: int) -> str:
    """A session key of user alice of ``code``, written straight into the store."""
    key = accounts.new_session_key()

    async def go() -> None:
        store = await open_store(settings.database_url)
        try:
            user = await store.find_user(code, "alice")
            assert user is not None
            now = now_ms()
            session = Session(accounts.hash_session_key(key), user.id, code, now - 7_200_000, now + expires_in)
            await store.create_session(session, purge_expired_before_ms=0)
        finally:
            await store.close()

    run(go())
    return key


# 1. Swagger conformance and the life of a configuration


def test_configuration_life_conforms_to_swagger(http: httpx.Client, login: Any, check: Check, clock: FakeClock) -> None:
    alice = login("1001")
    assert listing(http, check, alice) == []
    made = create(http, check, alice)
    assert {k: made[k] for k in VALID} == VALID
    assert made["clientcode"] == "1001"
    assert made["disabled"] is False
    assert made["createdat"] == made["updatedat"]
    assert fetch(http, check, alice, made["id"]) == made
    assert listing(http, check, alice) == [made]

    clock.advance(5)  # so that updatedat differs
    changed = {"table": "invoice", "action": "delete", "secret": "", "disabled": True}
    changed["endpoint"] = "https://other.example.org:8443/in"
    replaced = check.config(send(http, "PUT", alice, made["id"], changed))
    assert {k: replaced[k] for k in changed} == changed
    assert replaced["id"] == made["id"]
    assert replaced["createdat"] == made["createdat"]
    assert replaced["clientcode"] == "1001"
    assert replaced["updatedat"] > made["updatedat"]
    assert fetch(http, check, alice, made["id"]) == replaced
    assert listing(http, check, alice) == [replaced]

    check.removed(send(http, "DELETE", alice, made["id"]))
    check.error(send(http, "GET", alice, made["id"]), 404)
    check.error(send(http, "DELETE", alice, made["id"]), 404)
    check.error(send(http, "PUT", alice, made["id"], VALID), 404)
    assert listing(http, check, alice) == []


def test_list_is_oldest_first(http: httpx.Client, login: Any, check: Check) -> None:
    alice = login("1001")
    made = [create(http, check, alice, table=f"t{n}") for n in range(4)]
    check.removed(send(http, "DELETE", alice, made[1]["id"]))
    later = create(http, check, alice, table="t9")
    listed = listing(http, check, alice)
    assert [c["id"] for c in listed] == [made[0]["id"], made[2]["id"], made[3]["id"], later["id"]]
    assert [c["createdat"] for c in listed] == sorted(c["createdat"] for c in listed)


def test_put_replaces_every_field_and_a_missing_disabled_means_false(
    http: httpx.Client, login: Any, check: Check
) -> None:
    alice = login("1001")
    made = create(http, check, alice, action="confirm", secret="old", disabled=True)
    replaced = check.config(send(http, "PUT", alice, made["id"], VALID))
    assert {k: replaced[k] for k in INPUT_FIELDS} == {**VALID, "disabled": False}
    assert fetch(http, check, alice, made["id"])["disabled"] is False


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_unknown_id_is_404(http: httpx.Client, login: Any, check: Check, method: str) -> None:
    alice = login("1001")
    made = create(http, check, alice)
    body = VALID if method == "PUT" else None
    assert UNKNOWN_ID in check.error(send(http, method, alice, UNKNOWN_ID, body), 404)
    assert listing(http, check, alice) == [made]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
@pytest.mark.parametrize(
    "bad_id", ["xyz", "0123456789ABCDEF01234567", "0123456789abcdef0123456", "0123456789abcdef012345678"]
)
def test_malformed_id_is_400_naming_id(http: httpx.Client, login: Any, check: Check, method: str, bad_id: str) -> None:
    alice = login("1001")
    made = create(http, check, alice)
    body = VALID if method == "PUT" else None
    assert names("id", check.error(send(http, method, alice, bad_id, body), 400))
    assert listing(http, check, alice) == [made]


# 2. Isolation between clients


def test_a_client_sees_and_changes_only_its_own(http: httpx.Client, login: Any, check: Check) -> None:
    alice, bob = login("1001"), login("2002")
    made = create(http, check, alice)
    assert listing(http, check, bob) == []
    check.error(send(http, "GET", bob, made["id"]), 404)
    check.error(send(http, "PUT", bob, made["id"], {**VALID, "table": "stolen"}), 404)
    check.error(send(http, "DELETE", bob, made["id"]), 404)
    assert fetch(http, check, alice, made["id"]) == made
    assert listing(http, check, alice) == [made]
    assert listing(http, check, bob) == []


# 3. Authentication

BAD_CREDENTIALS = ["no-headers", "clientCode-only", "sessionKey-only", "unknown-key", "others-key", "expired"]


def bad_headers(case: str, alice: Client, bob: Client, settings: Settings) -> dict[str, str]:
    if case == "no-headers":
        return {}
    if case == "clientCode-only":
        return {"clientCode": alice.code}
    if case == "sessionKey-only":
        return {"sessionKey": alice.key}
    if case == "unknown-key":
        return {"clientCode": alice.code, "sessionKey": accounts.new_session_key()}
    if case == "others-key":
        return {"clientCode": alice.code, "sessionKey": bob.key}
    assert case == "expired"
    return {"clientCode": alice.code, "sessionKey": stored_key(settings, alice.code, -3_600_000)}


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("case", BAD_CREDENTIALS)
def test_bad_credentials_are_401(
    http: httpx.Client, login: Any, check: Check, server: LiveServer, method: str, case: str
) -> None:
    alice, bob = login("1001"), login("2002")
    made = create(http, check, alice)
    headers = bad_headers(case, alice, bob, server.settings)
    check.error(send(http, method, headers, body={**VALID, "table": "x"} if method == "POST" else None), 401)
    assert listing(http, check, alice) == [made]
    assert listing(http, check, bob) == []


def test_a_session_written_to_the_store_works_until_it_expires(
    http: httpx.Client, login: Any, check: Check, server: LiveServer
) -> None:
    """The control of the "expired" case above: the same key, still live, is accepted."""
    login("1001")
    live = Client("1001", stored_key(server.settings, "1001", 3_600_000))
    assert listing(http, check, live) == []
    create(http, check, live)


# 4. Bad input


def body(**changes: Any) -> bytes:
    return orjson.dumps({**VALID, **changes})


def without(field: str) -> Any:
    return pytest.param(orjson.dumps({k: v for k, v in VALID.items() if k != field}), field, id=f"no-{field}")


def wrong(field: str, value: Any) -> Any:
    return pytest.param(body(**{field: value}), field, id=f"{field}={json.dumps(value)[:40]}")


def endpoint(url: str) -> Any:
    return pytest.param(body(endpoint=url), "endpoint", id=f"endpoint={url[:40]}")


PRIVATE = [
    "http://127.0.0.1/x",
    "http://127.1/x",
    "http://2130706433/x",
    "http://0x7f.0.0.1/x",
    "http://017700000001/x",
    "http://localhost:8080/x",
    "http://api.localhost/x",
    "http://10.0.0.1/x",
    "http://192.168.1.1/x",
    "http://172.16.0.1/x",
    "http://169.254.169.254/latest",
    "http://[::1]/x",
    "http://[fe80::1]/x",
    "http://[::ffff:127.0.0.1]/x",
    "http://[64:ff9b::7f00:1]/x",
    "http://[fc00::1]/x",
    "http://[fec0::1]/x",
    "http://0.0.0.0/x",
    "http://224.0.0.1/x",
]
# 127.0.0.1 in disguise: a URL parser (WHATWG, httpx's IDNA) and getaddrinfo read U+3002 as "." and a
# trailing dot as nothing, so these are literal loopback addresses too.
PRIVATE += ["http://127\u30020\u30020\u30021/x", "http://127.0.0.1./x", "http://\u2460\u2461\u2466.0.0.1/x"]
NOT_ENDPOINTS = [
    "/relative/path",
    "ftp://example.com/x",
    "example.com/hook",
    "http://",
    "https://example.com:99999/x",
    "https://example.com/a b",
    "https://example.com/" + "a" * (2049 - 20),
    # What urllib reads as example.com, the sender (yarl) cannot read at all, or reads as another host.
    "http://127.0.0.1\\@example.com/x",
    "http://[::1]@example.com/x",
    "http://example.com:0/x",
    "http://%31%32%37.0.0.1/x",
    "http://exa%6Dple.com/x",
    "http://a*b/x",
    "http://a<b/x",
]
WRONG: list[tuple[str, Any]] = [
    *[("table", v) for v in (5, "t" * 65, "", "pro duct", "pro/duct", "prödukt")],
    *[("action", v) for v in (True, "upsert", "INSERT")],
    ("endpoint", 1),
    *[("secret", v) for v in (None, 5, "s" * 257)],
    *[("disabled", v) for v in ("yes", 1)],
]
BAD = [
    pytest.param(b"{not json", "body", id="not-json"),
    pytest.param(b"[]", "body", id="json-array"),
    pytest.param(orjson.dumps([VALID]), "body", id="array-of-config"),
    pytest.param(b"", "body", id="empty"),
    *(without(field) for field in ("table", "action", "endpoint", "secret")),
    *(wrong(field, value) for field, value in WRONG),
    *(endpoint(url) for url in NOT_ENDPOINTS + PRIVATE),
]


@pytest.mark.parametrize(("content", "field"), BAD)
def test_bad_input_on_post_is_400_naming_the_field(
    http: httpx.Client, login: Any, check: Check, content: bytes, field: str
) -> None:
    alice = login("1001")
    made = create(http, check, alice)
    message = check.error(send(http, "POST", alice, body=content), 400)
    assert names(field, message), message
    assert listing(http, check, alice) == [made]


@pytest.mark.parametrize(("content", "field"), BAD)
def test_bad_input_on_put_is_400_naming_the_field(
    http: httpx.Client, login: Any, check: Check, content: bytes, field: str
) -> None:
    alice = login("1001")
    made = create(http, check, alice)
    message = check.error(send(http, "PUT", alice, made["id"], content), 400)
    assert names(field, message), message
    assert fetch(http, check, alice, made["id"]) == made
    assert listing(http, check, alice) == [made]


GOOD = [
    pytest.param({"table": "a.b_c-" + "x" * 58}, id="table-64-with-dot-underscore-dash"),
    pytest.param({"secret": "s" * 256}, id="secret-256"),
    pytest.param({"secret": ""}, id="secret-empty"),
    pytest.param({"endpoint": "https://example.com/" + "a" * (2048 - 20)}, id="endpoint-2048"),
    pytest.param({"endpoint": "https://example.com:8443/hook"}, id="endpoint-with-port"),
    pytest.param({"endpoint": "http://93.184.216.34/x"}, id="public-ipv4-literal"),
    pytest.param({"endpoint": "http://[2606:4700::1111]/x"}, id="public-ipv6-literal"),
    pytest.param({"action": "confirm"}, id="action-confirm"),
    pytest.param({"disabled": True}, id="disabled-true"),
    pytest.param({"colour": "blue", "id": "f" * 24, "clientcode": "2002"}, id="unknown-keys-ignored"),
]


@pytest.mark.parametrize("changes", GOOD)
def test_good_edge_cases_are_accepted(http: httpx.Client, login: Any, check: Check, changes: dict[str, Any]) -> None:
    alice = login("1001")
    sent = {**VALID, **changes}
    expected = {k: sent.get(k, False) for k in INPUT_FIELDS}
    made = create(http, check, alice, **changes)
    assert {k: made[k] for k in INPUT_FIELDS} == expected
    assert made["clientcode"] == "1001"
    assert made["id"] != sent.get("id")
    assert listing(http, check, alice) == [made]
    other = create(http, check, alice, table="other")
    replaced = check.config(send(http, "PUT", alice, other["id"], sent))
    assert {k: replaced[k] for k in INPUT_FIELDS} == expected
    assert replaced["id"] == other["id"]


@pytest.mark.parametrize("content_type", [None, "text/plain"], ids=["no-content-type", "text-plain"])
def test_body_is_json_whatever_its_content_type(
    http: httpx.Client, login: Any, check: Check, content_type: str | None
) -> None:
    alice = login("1001")
    headers = {**alice.headers, **({"Content-Type": content_type} if content_type else {})}
    answer = http.post(URL, headers=headers, content=orjson.dumps(VALID))
    assert answer.request.headers.get("content-type") == content_type
    made = check.config(answer)
    assert {k: made[k] for k in VALID} == VALID
    assert listing(http, check, alice) == [made]


# 5. allow_private_endpoints


def test_private_endpoints_are_accepted_when_allowed(tmp_path: Path, check: Check) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'private.db'}", allow_private_endpoints=True)
    with serving(settings) as live:
        create_account(settings, "3003", "carol", "correct horse battery")
        with httpx.Client(base_url=live.url, timeout=10) as client:
            answer = verify_user(client, "3003", "carol", "correct horse battery")
            carol = Client("3003", answer["records"][0]["sessionKey"])
            for url in ("http://127.0.0.1:9/x", "http://localhost:8080/x", "http://[::1]/x", "http://10.0.0.1/"):
                assert create(client, check, carol, endpoint=url)["endpoint"] == url


def test_configurations_are_capped_per_table_and_action_and_per_client(
    http: httpx.Client, login: Any, check: Check
) -> None:
    """The defaults: 20 for one table and action, 100 in all; a refused call is a 400 that names the setting."""
    alice = login("3004")
    ids = [create(http, check, alice)["id"] for _ in range(20)]
    message = check.error(send(http, "POST", alice, body=VALID), 400)
    assert "max_configurations_per_subject" in message, message
    other = create(http, check, alice, table="invoice")
    moved = check.error(send(http, "PUT", alice, other["id"], body=VALID), 400)  # into the full one
    assert "max_configurations_per_subject" in moved, moved
    assert fetch(http, check, alice, other["id"]) == other
    for n in range(79):
        create(http, check, alice, table=f"table{n // 20}", action=["insert", "update", "delete", "confirm"][n % 4])
    message = check.error(send(http, "POST", alice, body={**VALID, "table": "order"}), 400)
    assert "max_configurations_per_client" in message, message
    assert len(listing(http, check, alice)) == 100
    check.removed(send(http, "DELETE", alice, ids[0]))
    create(http, check, alice)  # room again
    bob = login("3005")
    create(http, check, bob)  # caps are per client


# 6. Body size


def chunks(content: bytes) -> Iterator[bytes]:
    for start in range(0, len(content), 16 * 1024):
        yield content[start : start + 16 * 1024]


@pytest.mark.parametrize(
    ("method", "chunked"),
    [("POST", False), ("PUT", False), ("POST", True)],
    ids=["post", "put", "post-chunked"],
)
def test_a_body_over_64_kib_is_413(http: httpx.Client, login: Any, check: Check, method: str, chunked: bool) -> None:
    alice = login("1001")
    made = create(http, check, alice)
    big = body() + b" " * MAX_BODY
    headers = {**alice.headers, "Content-Type": "application/json"}
    url = f"{URL}/{made['id']}" if method == "PUT" else URL
    answer = http.request(method, url, headers=headers, content=chunks(big) if chunked else big)
    if chunked:
        assert "content-length" not in answer.request.headers
    check.error(answer, 413)
    assert listing(http, check, alice) == [made]


def test_a_body_of_exactly_64_kib_is_accepted(http: httpx.Client, login: Any, check: Check) -> None:
    alice = login("1001")
    exact = body() + b" " * (MAX_BODY - len(body()))
    assert len(exact) == MAX_BODY
    made = check.config(send(http, "POST", alice, body=exact))
    assert listing(http, check, alice) == [made]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PATCH", "/v1/webhook-configuration", "GET, POST"),
        ("POST", "/v1/webhook-configuration/6b0f3e20a049c314b70179db", "GET, PUT, DELETE"),
        ("GET", "/v1/webhook/6b0f3e20a049c314b70179db/resend", "POST"),
        ("DELETE", "/healthz", "GET"),
    ],
)
def test_a_method_a_path_does_not_take_is_405_naming_those_it_takes(
    http: httpx.Client, method: str, path: str, allow: str
) -> None:
    answer = http.request(method, path)
    assert answer.status_code == 405
    assert answer.headers["allow"] == allow
    assert answer.json() == {"error": "Method Not Allowed"}
