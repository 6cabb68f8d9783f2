"""``POST /v1/event`` with an ``Idempotency-Key`` over real HTTP, on both stores: a repeat answers the first
answer and stores nothing, another body is a 409, keys are per client, and racing calls store once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, cast

import httpx
import orjson
import pytest

from tests.clock import FakeClock
from tests.conftest import Client, create_account, serving
from tests.conftest import log_in as login
from tests.receiver import ThreadedReceiver
from tests.waiting import wait_until
from webhook_manager.api import create_app
from webhook_manager.delivery.purger import Purger
from webhook_manager.domain.model import IDEMPOTENCY_KEY_KEPT_MS, KeyedRecording
from webhook_manager.settings import Settings
from webhook_manager.store import Store

KEY = "Idempotency-Key"
CONFLICT = "Idempotency-Key: was used in the last 24 hours with another body; send new events with a new key"


@pytest.fixture
def receiver() -> Iterator[ThreadedReceiver]:
    r = ThreadedReceiver()
    yield r
    r.stop()


@pytest.fixture
def service(store_url: str) -> Iterator[httpx.Client]:
    settings = Settings(database_url=store_url, allow_private_endpoints=True, batch_linger_ms=0, retry_delay_s=0)
    with serving(settings, run_pipeline=True) as live:
        for code in ("100", "200"):
            create_account(settings, code, "alice", "correct horse battery")
        with httpx.Client(base_url=live.url, timeout=30) as http:
            yield http


def configure(http: httpx.Client, who: Client, endpoint: str) -> None:
    body = {"table": "product", "action": "insert", "endpoint": endpoint, "secret": "mySecretWord"}
    answer = http.post("/v1/webhook-configuration", json=body, headers=who.headers)
    assert answer.status_code == 200, answer.text


def body_of(*row_ids: int) -> bytes:
    return orjson.dumps({"table": "product", "action": "insert", "items": [{"rowId": i} for i in row_ids]})


def post(http: httpx.Client, who: Client, body: bytes, key: str | None = None) -> httpx.Response:
    headers = who.headers if key is None else {**who.headers, KEY: key}
    return http.post("/v1/event", content=body, headers=headers)


def row_ids(http: httpx.Client, who: Client) -> list[int]:
    """The client's recorded events of product/insert, newest first."""
    answer = http.get("/v1/event", params={"table": "product", "action": "insert", "limit": 100}, headers=who.headers)
    assert answer.status_code == 200, answer.text
    return [e["rowID"] for e in answer.json()]


def test_a_repeat_answers_the_first_answer_and_its_events_are_recorded_and_sent_once(
    service: httpx.Client, receiver: ThreadedReceiver
) -> None:
    alice = login(service, "100")
    configure(service, alice, receiver.url("/status/200"))
    body = body_of(1, 2, 3)
    first = post(service, alice, body, "order-1")
    assert (first.status_code, first.json()) == (200, {"received": 3, "recorded": 3})
    for _ in range(2):
        repeat = post(service, alice, body, "order-1")
        assert (repeat.status_code, repeat.content) == (200, first.content)
    assert row_ids(service, alice) == [3, 2, 1]
    (webhook,) = receiver.wait_for(1)
    assert webhook["eventCount"] == "3"
    log = wait_until(lambda: [w for w in service.get("/v1/webhook", headers=alice.headers).json() if w["tries"]])
    assert [(w["id"], w["eventCount"]) for w in log] == [(webhook["id"], 3)]


def test_the_key_with_another_body_is_a_409_naming_the_header_and_stores_nothing(service: httpx.Client) -> None:
    alice = login(service, "100")
    configure(service, alice, "http://127.0.0.1:9/")
    assert post(service, alice, body_of(1), "k").json() == {"received": 1, "recorded": 1}
    # other events, or the same JSON in other bytes: the body must be the same bytes
    for other in (body_of(2), body_of(1).replace(b",", b", ")):
        conflict = post(service, alice, other, "k")
        assert (conflict.status_code, conflict.json()) == (409, {"error": CONFLICT})
    assert row_ids(service, alice) == [1]
    assert post(service, alice, body_of(1), "k").json() == {"received": 1, "recorded": 1}  # the repeat still is
    assert row_ids(service, alice) == [1]
    # a call refused for its body leaves its key unused
    assert post(service, alice, b'{"table": "product"}', "k2").status_code == 400
    assert post(service, alice, body_of(5), "k2").json() == {"received": 1, "recorded": 1}
    assert row_ids(service, alice) == [5, 1]


def test_two_clients_may_use_one_key_each_for_its_own_events(service: httpx.Client) -> None:
    alice, bob = login(service, "100"), login(service, "200")
    configure(service, alice, "http://127.0.0.1:9/")
    assert post(service, alice, body_of(1, 2), "shared").json() == {"received": 2, "recorded": 2}
    # bob has no configuration: his events are dropped, and that answer is what his repeat gets
    assert post(service, bob, body_of(7), "shared").json() == {"received": 1, "recorded": 0}
    configure(service, bob, "http://127.0.0.1:9/")
    assert post(service, bob, body_of(7), "shared").json() == {"received": 1, "recorded": 0}
    assert row_ids(service, bob) == []
    assert post(service, bob, body_of(7), "shared-2").json() == {"received": 1, "recorded": 1}
    assert (row_ids(service, alice), row_ids(service, bob)) == ([2, 1], [7])


def test_a_bad_key_is_a_400_naming_the_header(service: httpx.Client) -> None:
    alice = login(service, "100")
    configure(service, alice, "http://127.0.0.1:9/")
    rule = {"error": "Idempotency-Key: must be 1 to 255 printable ASCII characters"}
    for bad in (b"", b"x" * 256, b"tab\there", "caf\u00e9".encode("latin-1")):
        raw = [(name.encode(), value.encode()) for name, value in alice.headers.items()] + [(KEY.encode(), bad)]
        answer = service.post("/v1/event", content=body_of(1), headers=raw)
        assert (answer.status_code, answer.json()) == (400, rule), bad
    twice = service.post("/v1/event", content=body_of(1), headers=[*alice.headers.items(), (KEY, "a"), (KEY, "a")])
    assert (twice.status_code, twice.json()) == (400, {"error": "Idempotency-Key: must be sent once"})
    assert row_ids(service, alice) == []
    # the longest key, with spaces inside and every other printable character
    longest = ("".join(chr(c) for c in range(0x20, 0x7F)) * 3)[1:256]
    assert post(service, alice, body_of(1), longest).json() == {"received": 1, "recorded": 1}
    assert post(service, alice, body_of(1), longest).json() == {"received": 1, "recorded": 1}
    assert row_ids(service, alice) == [1]


def race(url: str, who: Client, body: bytes, key: str) -> list[httpx.Response]:
    """Two calls with ``key`` from two threads, each on a connection of its own, let go at once."""
    start = threading.Barrier(2)
    answers: list[httpx.Response] = []

    def call() -> None:
        with httpx.Client(base_url=url, timeout=30) as own:
            start.wait(10)
            answers.append(post(own, who, body, key))

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return answers


def test_two_calls_at_once_with_one_key_store_the_events_once_and_get_the_same_answer(
    service: httpx.Client,
) -> None:
    alice = login(service, "100")
    configure(service, alice, "http://127.0.0.1:9/")
    body = body_of(*range(30))
    for n in range(3):
        answers = race(str(service.base_url), alice, body, f"race-{n}")
        assert [(a.status_code, a.content) for a in answers] == [(200, b'{"received":30,"recorded":30}')] * 2
    listed = service.get(
        "/v1/event", params={"table": "product", "action": "insert", "limit": 100}, headers=alice.headers
    ).json()
    assert len(listed) == 3 * 30
    assert len({e["id"][:16] for e in listed}) == 3  # an event's id starts with its recording's: three of them


def test_without_the_header_two_identical_calls_store_twice(service: httpx.Client) -> None:
    alice = login(service, "100")
    configure(service, alice, "http://127.0.0.1:9/")
    for _ in range(2):
        assert post(service, alice, body_of(1, 2)).json() == {"received": 2, "recorded": 2}
    assert row_ids(service, alice) == [2, 1, 2, 1]


def test_a_key_counts_as_unused_a_day_after_its_first_call(store_url: str) -> None:
    clock = FakeClock()
    settings = Settings(database_url=store_url, allow_private_endpoints=True)
    create_account(settings, "100", "alice", "correct horse battery")
    with serving(settings, clock=clock) as live, httpx.Client(base_url=live.url, timeout=30) as http:
        alice = login(http, "100")
        configure(http, alice, "http://127.0.0.1:9/")
        assert post(http, alice, body_of(1), "daily").json() == {"received": 1, "recorded": 1}
        clock.advance(IDEMPOTENCY_KEY_KEPT_MS)
        alice = login(http, "100")  # the session expired meanwhile
        assert post(http, alice, body_of(1), "daily").json() == {"received": 1, "recorded": 1}
        assert post(http, alice, body_of(2), "daily").status_code == 409  # still kept, a day on
        assert row_ids(http, alice) == [1]
        clock.advance(1)
        assert post(http, alice, body_of(2), "daily").json() == {"received": 1, "recorded": 1}  # unused: any body
        assert post(http, alice, body_of(1), "daily").status_code == 409  # now the key of the new call
        assert row_ids(http, alice) == [2, 1]


async def test_the_purger_deletes_keys_first_used_over_a_day_ago(store: Store) -> None:
    clock = FakeClock(start_ms=10**12)
    purger = Purger(store, Settings(), clock)
    one = orjson.dumps([{"rowId": 1, "timestamp": "2020-01-01 00:00:00", "data": None}])

    async def once(key: str) -> KeyedRecording:
        now = clock.now_ms()
        return await store.record_events_once(
            "100", key, b"h" * 32, "product", "insert", one, 1, now, expired_before_ms=now - IDEMPOTENCY_KEY_KEPT_MS
        )

    assert (await once("old")).first
    clock.advance(1000)
    assert (await once("new")).first
    clock.advance(IDEMPOTENCY_KEY_KEPT_MS)
    assert await purger.run_once() == 1  # "old": first used a day and a second ago
    assert not (await once("new")).first
    clock.advance(1000)
    assert await purger.run_once() == 1
    assert await purger.run_once() == 0


def test_the_document_declares_the_optional_header_and_the_409() -> None:
    operation: dict[str, Any] = create_app(Settings(), cast(Store, None)).openapi()["paths"]["/v1/event"]["post"]
    [header] = [p for p in operation["parameters"] if p["in"] == "header"]
    assert (header["name"], header["required"]) == (KEY, False)
    assert header["schema"]["maxLength"] == 255
    assert "Idempotency-Key" in operation["responses"]["409"]["description"]
