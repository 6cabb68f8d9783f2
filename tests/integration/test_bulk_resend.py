"""``POST /v1/webhook/resend`` (extension) over real HTTP, with the pipeline running and a real receiver, on both
stores: a receiver fails the first try of each webhook and the service makes none again (``retries`` 0), so
every webhook ends failed; a bulk resend gives the client's matching ones a new round, paced at
``resend_rate``. The service's clock stands still, so the resent webhooks due after now wait until a test moves
it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.clock import FakeClock
from tests.conftest import Client, create_account, serving
from tests.conftest import log_in as login
from tests.receiver import ThreadedReceiver
from tests.waiting import wait_until
from webhook_manager.domain.timefmt import rfc3339_ms
from webhook_manager.settings import Settings

PASSWORD = "correct horse battery"


@pytest.fixture
def receiver() -> Iterator[ThreadedReceiver]:
    r = ThreadedReceiver()
    yield r
    r.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(store_url: str, clock: FakeClock) -> Iterator[httpx.Client]:
    settings = Settings(
        database_url=store_url, allow_private_endpoints=True, batch_linger_ms=0, retries=0, retry_delay_s=0
    )
    with serving(settings, run_pipeline=True, clock=clock) as live:
        for code in ("100", "200"):
            create_account(settings, code, "alice", PASSWORD)
        with httpx.Client(base_url=live.url, timeout=30) as http:
            yield http


def configure(http: httpx.Client, who: Client, endpoint: str, table: str) -> str:
    body = {"table": table, "action": "insert", "endpoint": endpoint, "secret": "mySecretWord"}
    answer = http.post("/v1/webhook-configuration", json=body, headers=who.headers)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


def post_events(http: httpx.Client, who: Client, count: int, table: str) -> None:
    """``count`` events in one call: one webhook per 100 of them."""
    body = {"table": table, "action": "insert", "items": [{"rowId": i} for i in range(count)]}
    answer = http.post("/v1/event", content=orjson.dumps(body), headers=who.headers)
    assert answer.json() == {"received": count, "recorded": count}, answer.text


def log(http: httpx.Client, who: Client) -> list[Any]:
    answer = http.get("/v1/webhook", params={"limit": "100"}, headers=who.headers)
    assert answer.status_code == 200, answer.text
    found: list[Any] = answer.json()
    return found


def finished(http: httpx.Client, who: Client, count: int, *, sent: int) -> dict[str, Any]:
    """The client's webhooks by id once it has ``count``, each failed or sent, ``sent`` of them sent."""

    def done() -> dict[str, Any] | None:
        webhooks = {w["id"]: w for w in log(http, who)}
        statuses = Counter(w["status"] for w in webhooks.values())
        return webhooks if statuses == Counter({"failed": count - sent, "sent": sent}) - Counter() else None

    return wait_until(done, what=f"{count} webhooks of client {who.code}, {sent} of them sent")


def tries_by_id(receiver: ThreadedReceiver) -> Counter[str]:
    return Counter(r.headers["webhook-id"] for r in receiver.received)


def resend(http: httpx.Client, who: Client, body: Any) -> httpx.Response:
    return http.post("/v1/webhook/resend", content=orjson.dumps(body), headers=who.headers)


def test_a_bulk_resend_sends_the_clients_matching_failed_webhooks_again_once_each(
    service: httpx.Client, receiver: ThreadedReceiver, clock: FakeClock
) -> None:
    alice, bob = login(service, "100"), login(service, "200")
    flaky = receiver.url("/flaky/1")  # 500 to the first try of each webhook, then 200
    products = configure(service, alice, flaky, "product")
    configure(service, alice, flaky, "invoice")
    theirs = configure(service, bob, flaky, "product")
    post_events(service, alice, 300, "product")  # 3 webhooks
    post_events(service, alice, 200, "invoice")  # 2
    post_events(service, bob, 100, "product")  # 1
    first = finished(service, alice, 5, sent=0)
    [bobs] = finished(service, bob, 1, sent=0).values()
    assert Counter(tries_by_id(receiver).values()) == {1: 6}  # one try each
    created = sorted(w["createdAt"] for w in first.values())

    # None matches: another client's configuration, or a window before them all; nothing changes.
    assert resend(service, alice, {"configurationId": theirs}).json() == {"resent": 0}
    assert resend(service, alice, {"until": created[0]}).json() == {"resent": 0}  # until is exclusive

    answer = resend(service, alice, {"table": "product", "status": "failed", "configurationId": products})
    assert (answer.status_code, answer.json()) == (200, {"resent": 3})
    clock.advance(1000)  # past the pacing: at 100 a second the three are due within 30 ms
    after = finished(service, alice, 5, sent=3)
    product_ids = {i for i, w in first.items() if w["table"] == "product"}
    assert {i for i, w in after.items() if w["status"] == "sent"} == product_ids  # the same ids
    assert all(after[i]["tries"] == 2 for i in product_ids)

    answer = resend(service, alice, {"since": created[0], "until": rfc3339_ms(10**13)})  # the rest: the invoices
    assert (answer.status_code, answer.json()) == (200, {"resent": 2})
    clock.advance(1000)
    finished(service, alice, 5, sent=5)
    # Each of alice's was tried again once, bob's never: his stays failed, untouched and not counted.
    assert tries_by_id(receiver) == {**dict.fromkeys(first, 2), bobs["id"]: 1}
    assert log(service, bob) == [bobs]
    assert resend(service, alice, {}).json() == {"resent": 0}  # none failed is left


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "sent"}, "status"),
        ({"status": "retrying"}, "status"),
        ({"status": None}, "status"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2020-01-01T00:00:00"}, "since"),  # no zone
        ({"until": 1577836800000}, "until"),
        ({"until": "2020-02-30T00:00:00Z"}, "until"),
        ({"configurationId": "nothex"}, "configurationId"),
        ({"configurationId": None}, "configurationId"),
        ({"table": ""}, "table"),
        ({"table": 5}, "table"),
        ({"action": "upsert"}, "action"),
        ({"tables": "product"}, "tables"),  # unknown fields are refused, not ignored
        ([], "body"),
        ("failed", "body"),
    ],
)
def test_bad_filters_are_400_naming_the_field(service: httpx.Client, body: Any, field: str) -> None:
    answer = resend(service, login(service, "100"), body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"].startswith(f"{field}: "), answer.text


def test_a_bulk_resend_needs_a_session_and_takes_post_alone(service: httpx.Client) -> None:
    assert service.post("/v1/webhook/resend", json={}).status_code == 401
    assert service.post("/v1/webhook/resend", json={}, headers={"clientCode": "100"}).status_code == 401
    for method in ("GET", "PUT", "DELETE"):  # not the {id} of GET /v1/webhook/{id}: a resource of POST alone
        answer = service.request(method, "/v1/webhook/resend", headers=login(service, "100").headers)
        assert (answer.status_code, answer.headers["allow"]) == (405, "POST"), method
