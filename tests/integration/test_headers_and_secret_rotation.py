"""Custom headers and secret rotation with overlap (extensions, docs/api.md and docs/payload.md), over real HTTP:
the configuration API's rules and answers on SQLite, then the whole way to a real receiver on each store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from tests.clock import FakeClock
from tests.conftest import Client, create_account, serving, verify_user
from tests.receiver import Received, ThreadedReceiver
from tests.swagger import model_definitions, problems, strict_definitions
from webhook_manager.delivery.signing import erply_hmac
from webhook_manager.domain.timefmt import rfc3339_ms
from webhook_manager.settings import Settings

URL = "/v1/webhook-configuration"
VALID: dict[str, Any] = {"table": "product", "action": "insert", "endpoint": "https://example.com/hook", "secret": "s"}
ERPLY_KEYS = set(model_definitions()["models.WebhookConfiguration"]["properties"])
HOUR_MS = 3_600_000
PASSWORD = "correct horse battery"


def call(http: httpx.Client, method: str, who: Client, id_: str = "", body: Any = None) -> httpx.Response:
    content = None if body is None else orjson.dumps(body)
    return http.request(method, f"{URL}/{id_}" if id_ else URL, headers=who.headers, content=content)


def ok(answer: httpx.Response) -> Any:
    assert answer.status_code == 200, answer.text
    return answer.json()


def erplys(configuration: dict[str, Any]) -> None:
    """Exactly Erply's WebhookConfiguration, every key and no other."""
    assert set(configuration) == ERPLY_KEYS, configuration
    assert problems(strict_definitions(), {"$ref": "#/definitions/models.WebhookConfiguration"}, configuration) == []


# 1. The rules of custom headers


def one(name: str, value: Any = "v") -> dict[str, Any]:
    return {name: value}


BAD_VALUES: list[Any] = [
    "a\r\nInjected: 1",
    "a\nb",
    "a\rb",
    "a\x00b",
    "a\x7fb",
    "a\x1bb",
    "tée",
    "x" * 1025,
    5,
    None,
    [],
]
NOT_OBJECTS: list[Any] = [[], "X-A: 1", None, 1]
BAD_HEADERS = [
    # names the service sets itself, in any case
    *(pytest.param(one(n), f"headers.{n}", id=n) for n in ("Content-Type", "content-length", "HOST", "User-Agent")),
    *(pytest.param(one(n), f"headers.{n}", id=n) for n in ("webhook-id", "Webhook-Timestamp", "webhook-signature")),
    pytest.param(one("webhook-anything"), "headers.webhook-anything", id="webhook-star"),
    # hop-by-hop ones, and Expect
    *(
        pytest.param(one(n), f"headers.{n}", id=n)
        for n in ("Connection", "keep-alive", "Proxy-Authorization", "proxy-x", "TE", "Trailer", "Transfer-Encoding")
    ),
    pytest.param(one("Upgrade"), "headers.Upgrade", id="Upgrade"),
    pytest.param(one("Expect", "100-continue"), "headers.Expect", id="Expect"),
    # names that are not RFC 7230 tokens
    *(pytest.param(one(n), f"headers.{n}", id=f"name={n!r}") for n in ("X Bad", "X:Colon", "Ünï", "X(y)", "")),
    pytest.param(one("X-" + "n" * 255), "headers.X-nnn", id="name-257"),
    # values
    *(pytest.param(one("X-Token", v), "headers.X-Token", id=f"value={v!r}") for v in BAD_VALUES),
    # case-insensitive repeats, too many, not an object
    pytest.param({"X-Same": "1", "x-same": "2"}, "headers.x-same", id="repeat-in-other-case"),
    pytest.param({f"X-{n}": "v" for n in range(21)}, "headers", id="21-headers"),
    *(pytest.param(v, "headers", id=f"headers={v!r}") for v in NOT_OBJECTS),
]


@pytest.mark.parametrize("method", ["POST", "PUT"])
@pytest.mark.parametrize(("headers", "field"), BAD_HEADERS)
def test_bad_custom_headers_are_400_naming_the_header_and_nothing_is_written(
    http: httpx.Client, login: Any, method: str, headers: Any, field: str
) -> None:
    alice = login("1001")
    made = ok(call(http, "POST", alice, body=VALID))
    answer = call(http, method, alice, made["id"] if method == "PUT" else "", {**VALID, "headers": headers})
    assert answer.status_code == 400, answer.text
    message = answer.json()["error"]
    assert message.startswith(f"{field}: ") or (field.endswith("nnn") and message.startswith(field)), message
    assert ok(call(http, "GET", alice)) == [made]
    if isinstance(headers, dict):
        for value in headers.values():  # a value may be a token: never repeated
            assert not (isinstance(value, str) and len(value) > 3 and value in message), message


GOOD_HEADERS = {
    "Authorization": "Bearer 3f9a0c1d",
    "X-Api-Key": "x" * 1024,
    "x-empty": "",
    "X-Tab": "a\tb  c",
    "!#$%&'*+-.^_`|~09azAZ": "every token character",
    "Hosts": "not Host",
    "Webhook": "not webhook-*",
    **{f"X-{n}": str(n) for n in range(13)},
}


def test_good_headers_are_kept_as_given_and_shown_only_when_there_are_some(http: httpx.Client, login: Any) -> None:
    assert len(GOOD_HEADERS) == 20
    alice = login("1001")
    plain = ok(call(http, "POST", alice, body=VALID))
    erplys(plain)
    made = ok(call(http, "POST", alice, body={**VALID, "headers": GOOD_HEADERS}))
    assert set(made) == ERPLY_KEYS | {"headers"}
    assert list(made["headers"].items()) == list(GOOD_HEADERS.items())
    assert ok(call(http, "GET", alice, made["id"])) == made
    assert ok(call(http, "GET", alice)) == [plain, made]

    replaced = ok(call(http, "PUT", alice, made["id"], {**VALID, "headers": {"X-New": "1"}}))
    assert replaced["headers"] == {"X-New": "1"}
    dropped = ok(call(http, "PUT", alice, made["id"], VALID))  # a PUT sets every field: none without it
    erplys(dropped)
    erplys(ok(call(http, "PUT", alice, made["id"], {**VALID, "headers": {}})))
    erplys(ok(call(http, "GET", alice, made["id"])))


# 2. The replaced secret's grace in the configuration's answers


def test_previous_secret_until_shows_only_while_the_replaced_secret_still_signs(
    http: httpx.Client, login: Any, clock: FakeClock
) -> None:
    alice = login("1001")
    made = ok(call(http, "POST", alice, body={**VALID, "secret": "the-old-one"}))
    erplys(ok(call(http, "PUT", alice, made["id"], {**VALID, "secret": "the-old-one"})))  # the same: no grace

    put_at = clock.now_ms()
    rotated = call(http, "PUT", alice, made["id"], {**VALID, "secret": "the-new-one"})
    assert "the-old-one" not in rotated.text  # never the replaced secret itself
    shown = ok(rotated)
    assert set(shown) == ERPLY_KEYS | {"previousSecretUntil"}
    assert shown["secret"] == "the-new-one"
    assert shown["previousSecretUntil"] == rfc3339_ms(put_at + 24 * HOUR_MS)  # secret_grace_h, 24 by default
    assert ok(call(http, "GET", alice, made["id"])) == shown
    assert ok(call(http, "GET", alice)) == [shown]

    clock.advance(24 * HOUR_MS - 1)
    alice = Client("1001", verify_user(http, "1001", "alice", PASSWORD)["records"][0]["sessionKey"])  # a day on
    assert "previousSecretUntil" in ok(call(http, "GET", alice, made["id"]))
    clock.advance(1)  # the grace is over
    erplys(ok(call(http, "GET", alice, made["id"])))
    erplys(ok(call(http, "GET", alice))[0])


def test_no_grace_with_secret_grace_h_0_nor_after_an_empty_secret(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'wm.db'}", secret_grace_h=0)
    create_account(settings, "1001", "alice", PASSWORD)
    with serving(settings) as live, httpx.Client(base_url=live.url, timeout=10) as http:
        alice = Client("1001", verify_user(http, "1001", "alice", PASSWORD)["records"][0]["sessionKey"])
        made = ok(call(http, "POST", alice, body=VALID))
        erplys(ok(call(http, "PUT", alice, made["id"], {**VALID, "secret": "other"})))
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'wm.db'}")
    with serving(settings) as live, httpx.Client(base_url=live.url, timeout=10) as http:
        alice = Client("1001", verify_user(http, "1001", "alice", PASSWORD)["records"][0]["sessionKey"])
        made = ok(call(http, "POST", alice, body={**VALID, "secret": ""}))
        erplys(ok(call(http, "PUT", alice, made["id"], {**VALID, "secret": "first"})))  # "" signed nothing


# 3. The whole way: API, store, pipeline, a real receiver


def signatures(got: Received) -> list[str]:
    return got.headers["webhook-signature"].split(" ")


def verifies(secret: bytes, got: Received) -> bool:
    try:
        Webhook(secret).verify(got.body, got.headers)
    except WebhookVerificationError:
        return False
    return True


@pytest.fixture
def threaded_receiver() -> Iterator[ThreadedReceiver]:
    r = ThreadedReceiver()
    yield r
    r.stop()


def test_headers_arrive_on_every_try_and_a_new_secret_signs_beside_the_old_one_for_the_grace(
    store_url: str, threaded_receiver: ThreadedReceiver
) -> None:
    receiver = threaded_receiver
    grace_ms = 36_000  # secret_grace_h 0.01: moved past by the clock, within the five minutes receivers allow
    settings = Settings(
        database_url=store_url,
        allow_private_endpoints=True,
        batch_linger_ms=0,
        retries=1,
        retry_delay_s=0,
        secret_grace_h=0.01,
    )
    clock = FakeClock()
    create_account(settings, "100", "alice", PASSWORD)
    with serving(settings, run_pipeline=True, clock=clock) as live, httpx.Client(base_url=live.url, timeout=10) as http:
        alice = Client("100", verify_user(http, "100", "alice", PASSWORD)["records"][0]["sessionKey"])
        endpoint = receiver.url("/flaky/1")  # each webhook: 500 first, then 200
        first_headers = {"Authorization": "Bearer t1", "X-Tenant": "acme"}
        configuration = {**VALID, "endpoint": endpoint, "secret": "old", "headers": first_headers}
        made = ok(call(http, "POST", alice, body=configuration))

        def send_one_event() -> None:
            event = {"table": "product", "action": "insert", "items": [{"rowId": 1}]}
            answer = http.post("/v1/event", headers=alice.headers, content=orjson.dumps(event))
            assert answer.json() == {"received": 1, "recorded": 1}

        def two_more_tries() -> list[Received]:
            before = len(receiver.received)
            receiver.wait_for(before + 2)
            tries = receiver.received[before:]
            assert len(tries) == 2
            assert tries[0].body == tries[1].body  # a failed try and its retry
            return tries

        # before any change: the configuration's headers on both tries, one signature
        send_one_event()
        for got in two_more_tries():
            assert (got.headers["Authorization"], got.headers["X-Tenant"]) == ("Bearer t1", "acme")
            assert len(signatures(got)) == 1
            assert verifies(b"old", got)

        # a new secret and new headers: in the grace, both signatures, each verifying with its secret
        put_at = clock.now_ms()
        changed = {**VALID, "endpoint": endpoint, "secret": "new", "headers": {"Authorization": "Bearer t2"}}
        shown = ok(call(http, "PUT", alice, made["id"], changed))
        assert shown["previousSecretUntil"] == rfc3339_ms(put_at + grace_ms)
        send_one_event()
        for got in two_more_tries():
            assert got.headers["Authorization"] == "Bearer t2"
            assert "X-Tenant" not in got.headers
            assert got.json["hmac"] == erply_hmac("new", got.json["id"])  # formed after the change
            assert len(signatures(got)) == 2
            assert verifies(b"new", got)
            assert verifies(b"old", got)
            assert not verifies(b"neither", got)

        # past the grace: the new secret alone
        clock.advance(grace_ms)
        erplys(_without_headers(made["id"], http, alice))  # no previousSecretUntil any more
        send_one_event()
        for got in two_more_tries():
            assert got.headers["Authorization"] == "Bearer t2"
            assert got.json["hmac"] == erply_hmac("new", got.json["id"])
            assert len(signatures(got)) == 1
            assert verifies(b"new", got)
            assert not verifies(b"old", got)


def _without_headers(id_: str, http: httpx.Client, who: Client) -> dict[str, Any]:
    """The configuration's answer without its ``headers`` (the one extension key it keeps)."""
    answer = dict(ok(call(http, "GET", who, id_)))
    assert answer.pop("headers") == {"Authorization": "Bearer t2"}
    return answer
