"""What a dashboard reads (extensions), over real HTTP with the pipeline running and a real receiver, on both
stores: the delivery log's ``status`` filter and ``before`` paging, ``/v1/endpoint-health`` and
``/v1/webhook-stats``. The service runs on a clock that stands still 10 s into a minute, so every try of a test
starts in that minute and ends in it (tries take milliseconds); tests move it to see the windows slide."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.clock import FakeClock
from tests.conftest import Client, create_account, serving
from tests.conftest import log_in as login
from tests.receiver import ThreadedReceiver
from tests.swagger import array_of, problems, strict_definitions
from tests.waiting import wait_until
from webhook_manager.domain.clock import SYSTEM_CLOCK
from webhook_manager.domain.ids import new_id
from webhook_manager.domain.timefmt import rfc3339_ms
from webhook_manager.settings import Settings

MINUTE_MS = 60_000
PASSWORD = "correct horse battery"


@pytest.fixture
def receiver() -> Iterator[ThreadedReceiver]:
    r = ThreadedReceiver()
    yield r
    r.stop()


@pytest.fixture
def clock() -> FakeClock:
    real = SYSTEM_CLOCK.now_ms()
    return FakeClock(start_ms=real - real % MINUTE_MS + 10_000)


@pytest.fixture
def service(store_url: str, clock: FakeClock) -> Iterator[httpx.Client]:
    # No retries: each webhook is tried once, sent or failed, whatever the clock does.
    settings = Settings(
        database_url=store_url, allow_private_endpoints=True, batch_linger_ms=0, retries=0, retry_delay_s=0
    )
    with serving(settings, run_pipeline=True, clock=clock) as live:
        for code in ("100", "200"):
            create_account(settings, code, "alice", PASSWORD)
        with httpx.Client(base_url=live.url, timeout=30) as http:
            yield http


def configure(http: httpx.Client, who: Client, endpoint: str, table: str = "product") -> None:
    body = {"table": table, "action": "insert", "endpoint": endpoint, "secret": "mySecretWord"}
    answer = http.post("/v1/webhook-configuration", json=body, headers=who.headers)
    assert answer.status_code == 200, answer.text


def post_events(http: httpx.Client, who: Client, count: int, table: str = "product") -> None:
    """``count`` events in one call: one webhook per 100 of them, per configuration of the table."""
    body = {"table": table, "action": "insert", "items": [{"rowId": i} for i in range(count)]}
    answer = http.post("/v1/event", content=orjson.dumps(body), headers=who.headers)
    assert answer.json() == {"received": count, "recorded": count}, answer.text


def get(http: httpx.Client, who: Client, path: str, **params: str) -> httpx.Response:
    return http.get(path, params=params, headers=who.headers)


def finished_log(http: httpx.Client, who: Client, count: int) -> list[Any]:
    """The client's log once it holds ``count`` webhooks, each sent or failed."""

    def done() -> list[Any] | None:
        log: list[Any] = get(http, who, "/v1/webhook", limit="100").json()
        return log if len(log) == count and all(w["status"] in ("sent", "failed") for w in log) else None

    return wait_until(done, what=f"{count} webhooks of client {who.code} sent or failed")


def ids(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [w["id"] for w in answer.json()]


def test_the_log_pages_with_before_and_filters_by_status(service: httpx.Client, receiver: ThreadedReceiver) -> None:
    alice = login(service, "100")
    configure(service, alice, receiver.url("/status/200"))
    configure(service, alice, receiver.url("/status/500"), table="invoice")
    post_events(service, alice, 700)  # 7 webhooks, sent
    post_events(service, alice, 300, table="invoice")  # 3, failed
    log = finished_log(service, alice, 10)
    newest_first = [w["id"] for w in log]

    pages: list[list[str]] = []
    page = ids(get(service, alice, "/v1/webhook", limit="3"))
    while page:
        pages.append(page)
        answer = get(service, alice, "/v1/webhook", limit="3", before=page[-1])
        assert not problems(strict_definitions(), array_of("models.OutputWebhook"), answer.json())
        page = ids(answer)
    assert [len(p) for p in pages] == [3, 3, 3, 1]
    assert [i for p in pages for i in p] == newest_first  # each once, in order

    sent = [w["id"] for w in log if w["status"] == "sent"]
    failed = [w["id"] for w in log if w["status"] == "failed"]
    assert (len(sent), len(failed)) == (7, 3)
    assert ids(get(service, alice, "/v1/webhook", status="sent")) == sent
    assert ids(get(service, alice, "/v1/webhook", status="failed")) == failed
    assert ids(get(service, alice, "/v1/webhook", status="pending")) == []
    assert ids(get(service, alice, "/v1/webhook", status="retrying")) == []
    # the filters at once: the page of two sent webhooks after the newest sent one; none failed of product
    assert ids(get(service, alice, "/v1/webhook", status="sent", before=sent[0], limit="2")) == sent[1:3]
    assert ids(get(service, alice, "/v1/webhook", status="failed", table="product")) == []
    assert ids(get(service, alice, "/v1/webhook", status="failed", table="invoice", before=failed[0])) == failed[1:]


def test_bad_status_before_and_minutes_are_400_naming_the_field(service: httpx.Client) -> None:
    alice = login(service, "100")
    bad_log = [("status", v) for v in ("done", "SENT", "", "sent,failed")]
    bad_log += [("before", v) for v in ("xyz", "0123456789ABCDEF01234567", "0123456789abcdef0123456", "")]
    for field, value in bad_log:
        answer = get(service, alice, "/v1/webhook", **{field: value})
        assert answer.status_code == 400, (field, value)
        assert answer.json()["error"].startswith(f"{field}: "), (field, value)
    for path in ("/v1/endpoint-health", "/v1/webhook-stats"):
        for value in ("0", "1441", "-5", "1.5", "ten", "", "٣", "9" * 5000):
            answer = get(service, alice, path, minutes=value)
            assert answer.status_code == 400, (path, value)
            assert answer.json()["error"] == "minutes: must be a whole number from 1 to 1440", (path, value)
        for value in ("1", "1440", "0060"):
            assert get(service, alice, path, minutes=value).status_code == 200, (path, value)
        assert service.get(path).status_code == 401
        assert service.get(path, headers={"clientCode": "100"}).status_code == 401


def test_before_another_clients_webhook_is_400_and_tells_nothing(
    service: httpx.Client, receiver: ThreadedReceiver
) -> None:
    alice, bob = login(service, "100"), login(service, "200")
    configure(service, alice, receiver.url("/status/200"))
    post_events(service, alice, 1)
    [theirs] = finished_log(service, alice, 1)
    of_alice = get(service, bob, "/v1/webhook", before=theirs["id"])
    of_nobody = get(service, bob, "/v1/webhook", before=new_id())
    assert (of_alice.status_code, of_nobody.status_code) == (400, 400)
    assert of_alice.json() == of_nobody.json() == {"error": "before: no such webhook"}
    assert ids(get(service, alice, "/v1/webhook", before=theirs["id"])) == []  # alice's own: nothing older


def test_endpoint_health_and_webhook_stats_count_the_clients_own_tries_and_webhooks(
    service: httpx.Client, receiver: ThreadedReceiver, clock: FakeClock
) -> None:
    alice, bob = login(service, "100"), login(service, "200")
    ok, failing = receiver.url("/status/200"), receiver.url("/status/500")
    configure(service, alice, ok)
    configure(service, alice, failing, table="invoice")
    configure(service, bob, ok)  # the same endpoint: its tries are bob's, not alice's
    post_events(service, alice, 250)  # 3 webhooks to ok
    post_events(service, alice, 120, table="invoice")  # 2 to failing
    post_events(service, bob, 1)  # 1 to ok
    finished_log(service, alice, 5)
    finished_log(service, bob, 1)
    assert len(receiver.received) == 6  # one try each

    def health(who: Client, **params: str) -> list[Any]:
        answer = get(service, who, "/v1/endpoint-health", **params)
        assert answer.status_code == 200, answer.text
        reports: list[Any] = answer.json()
        for report in reports:  # the durations are real ones
            assert 0 <= report.pop("p50Ms") <= report.pop("p99Ms")
        return reports

    now = clock.now_ms()  # it stands still: every try started now
    assert health(alice) == [
        {"endpoint": ok, "tries": 3, "successes": 3, "successRate": 1.0, "lastFailureAt": None, "lastFailure": None},
        {
            "endpoint": failing,
            "tries": 2,
            "successes": 0,
            "successRate": 0.0,
            "lastFailureAt": rfc3339_ms(now),
            "lastFailure": "HTTP 500",
        },
    ]
    assert health(bob) == [
        {"endpoint": ok, "tries": 1, "successes": 1, "successRate": 1.0, "lastFailureAt": None, "lastFailure": None}
    ]

    def stats(who: Client, **params: str) -> Any:
        answer = get(service, who, "/v1/webhook-stats", **params)
        assert answer.status_code == 200, answer.text
        return answer.json()

    minute = now - now % MINUTE_MS
    hour = stats(alice)
    assert hour["from"] == rfc3339_ms(minute - 59 * MINUTE_MS)
    assert [m["at"] for m in hour["minutes"]] == [rfc3339_ms(minute + (i - 59) * MINUTE_MS) for i in range(60)]
    assert [(m["sent"], m["failed"]) for m in hour["minutes"]] == [(0, 0)] * 59 + [(3, 2)]
    assert [(m["sent"], m["failed"]) for m in stats(bob)["minutes"]] == [(0, 0)] * 59 + [(1, 0)]
    assert stats(alice, minutes="1") == {"from": rfc3339_ms(minute), "minutes": [hour["minutes"][-1]]}

    # Just over a minute later the tries are out of the last minute (a try at its very start counts), and the
    # webhooks are in the minute before the current one.
    clock.advance(MINUTE_MS + 1)
    assert health(alice, minutes="1") == []
    assert [r["tries"] for r in health(alice, minutes="2")] == [3, 2]
    later = stats(alice, minutes="3")
    assert later["from"] == rfc3339_ms(minute - MINUTE_MS)
    assert [(m["sent"], m["failed"]) for m in later["minutes"]] == [(0, 0), (3, 2), (0, 0)]
