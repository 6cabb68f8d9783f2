"""Events → batches → signed webhooks → real receivers, with every try logged (docs/payload.md).

Every test runs on each store (the ``store`` fixture of tests/integration/conftest.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from tests.clock import FakeClock
from tests.integration.pipeline_helpers import add_configuration, record
from tests.receiver import Receiver
from webhook_manager.delivery.pipeline import Pipeline
from webhook_manager.delivery.purger import Purger
from webhook_manager.delivery.signing import erply_hmac
from webhook_manager.domain.model import ConfigurationInput, WebhookStatus
from webhook_manager.domain.timefmt import now_ms
from webhook_manager.settings import Settings
from webhook_manager.store import Store


def make_settings(tmp_path: Path, **changes: Any) -> Settings:
    base: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'wm.db'}",
        "allow_private_endpoints": True,
        "batch_linger_ms": 0,
        "retry_delay_s": 0,
    }
    return Settings(**{**base, **changes})


async def deliver(store: Store, tmp_path: Path, **changes: Any) -> None:
    """Form and send everything due now with a pipeline of these settings, then close it."""
    p = Pipeline(store, make_settings(tmp_path, **changes))
    await p.egress.start()
    try:
        await p.run_once()
    finally:
        await p.egress.close()


@pytest.fixture
async def pipeline(tmp_path: Path, store: Store) -> AsyncIterator[Pipeline]:
    p = Pipeline(store, make_settings(tmp_path))
    await p.egress.start()
    yield p
    await p.egress.close()


async def history(store: Store, client_code: str = "100") -> list[Any]:
    return await store.list_webhooks(client_code, None, None, 100)


async def test_250_events_make_webhooks_of_100_100_and_50(store: Store, pipeline: Pipeline, receiver: Receiver) -> None:
    await add_configuration(store, receiver.url("/status/200"))
    assert await record(store, range(1, 251))
    await pipeline.run_once()
    bodies = receiver.bodies()
    assert sorted(int(b["eventCount"]) for b in bodies) == [50, 100, 100]
    row_ids = [item["rowId"] for b in bodies for item in b["items"]]
    assert sorted(row_ids) == list(range(1, 251))
    for b in bodies:
        assert list(b) == ["id", "hmac", "clientCode", "table", "action", "eventCount", "items"]
        assert b["eventCount"] == str(len(b["items"]))
        assert b["hmac"] == erply_hmac("mySecretWord", b["id"])
        assert (b["clientCode"], b["table"], b["action"]) == ("100", "product", "insert")
        assert b["items"][0] == {"rowId": b["items"][0]["rowId"], "timestamp": "2020-01-01 00:00:00", "data": None}
    assert {w.status for w in await history(store)} == {WebhookStatus.SENT}


async def test_5000_events_make_exactly_50_webhooks(store: Store, pipeline: Pipeline, receiver: Receiver) -> None:
    await add_configuration(store, receiver.url("/status/200"))
    await record(store, range(5000))
    await pipeline.run_once()
    bodies = receiver.bodies()
    assert len(bodies) == 50
    assert all(b["eventCount"] == "100" for b in bodies)
    assert sorted(i["rowId"] for b in bodies for i in b["items"]) == list(range(5000))


async def test_a_partial_batch_waits_for_the_linger(tmp_path: Path, store: Store, receiver: Receiver) -> None:
    p = Pipeline(store, make_settings(tmp_path, batch_linger_ms=60_000))
    await p.egress.start()
    try:
        await add_configuration(store, receiver.url("/status/200"))
        await record(store, range(130))
        await p.run_once()
        assert [b["eventCount"] for b in receiver.bodies()] == ["100"]  # the 30 wait for the linger
        made, wake_at = await p.batcher.run_once()
        assert made == 0
        assert wake_at is not None
    finally:
        await p.egress.close()


async def test_every_try_is_signed_with_standard_webhooks_headers(
    store: Store, pipeline: Pipeline, receiver: Receiver
) -> None:
    await add_configuration(store, receiver.url("/status/200"), secret="s3cr3t")
    await record(store, range(3))
    await pipeline.run_once()
    (got,) = receiver.received
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["User-Agent"].startswith("webhook-manager/")
    assert got.headers["webhook-id"] == got.json["id"]
    Webhook(b"s3cr3t").verify(got.body, got.headers)


async def test_an_empty_secret_sends_no_signature_headers(store: Store, pipeline: Pipeline, receiver: Receiver) -> None:
    await add_configuration(store, receiver.url("/status/200"), secret="")
    await record(store, range(3))
    await pipeline.run_once()
    (got,) = receiver.received
    assert "webhook-signature" not in got.headers
    assert got.json["hmac"] == erply_hmac("", got.json["id"])


@pytest.mark.parametrize("retries", [0, 1, 3])
async def test_always_500_is_retries_plus_one_tries_then_failed(
    tmp_path: Path, store: Store, receiver: Receiver, retries: int
) -> None:
    await add_configuration(store, receiver.url("/status/500"))
    await record(store, range(5))
    await deliver(store, tmp_path, retries=retries)
    await deliver(store, tmp_path, retries=retries)  # nothing more is tried once it has failed
    assert len(receiver.received) == retries + 1
    assert len({r.body for r in receiver.received}) == 1  # the same id and body on every try
    (w,) = await history(store)
    assert (w.status, w.tries, w.last_failure) == (WebhookStatus.FAILED, retries + 1, "HTTP 500")


async def test_500_then_200_is_sent_after_two_tries(store: Store, pipeline: Pipeline, receiver: Receiver) -> None:
    await add_configuration(store, receiver.url("/flaky/1"))
    await record(store, range(5))
    await pipeline.run_once()
    (w,) = await history(store)
    assert (w.status, w.tries, w.last_failure) == (WebhookStatus.SENT, 2, "HTTP 500")
    found = await store.get_webhook("100", w.id)
    assert found is not None
    assert [(a.http_status, a.error) for a in found[2]] == [(500, "HTTP 500"), (200, "")]


async def test_201_fails_unless_any_2xx_is_accepted(tmp_path: Path, store: Store, receiver: Receiver) -> None:
    await add_configuration(store, receiver.url("/status/201"))
    for accept, expected in [(False, WebhookStatus.FAILED), (True, WebhookStatus.SENT)]:
        await record(store, range(1))
        await deliver(store, tmp_path, retries=0, accept_any_2xx=accept)
        assert (await history(store))[0].status == expected


async def test_a_redirect_is_a_failed_try_and_not_followed(tmp_path: Path, store: Store, receiver: Receiver) -> None:
    await add_configuration(store, receiver.url("/redirect"))
    await record(store, range(1))
    await deliver(store, tmp_path, retries=0)
    assert [r.path for r in receiver.received] == ["/redirect"]
    (w,) = await history(store)
    assert w.status == WebhookStatus.FAILED
    assert w.last_failure == "HTTP 302 (redirect not followed)"


async def test_a_reset_connection_is_a_failed_try(tmp_path: Path, store: Store, receiver: Receiver) -> None:
    await add_configuration(store, receiver.url("/reset"))
    await record(store, range(1))
    await deliver(store, tmp_path, retries=0)
    (w,) = await history(store)
    assert w.status == WebhookStatus.FAILED
    assert w.last_failure in ("connection reset", "connection closed before an answer")


async def test_an_answer_that_is_not_http_is_said_in_plain_words(
    tmp_path: Path, store: Store, receiver: Receiver
) -> None:
    await add_configuration(store, receiver.url("/garbage"))
    await record(store, range(1))
    await deliver(store, tmp_path, retries=0)
    (w,) = await history(store)
    assert (w.status, w.last_failure) == (WebhookStatus.FAILED, "malformed HTTP answer")


async def test_a_huge_answer_is_read_only_up_to_a_small_cap(tmp_path: Path, store: Store, receiver: Receiver) -> None:
    await add_configuration(store, receiver.url("/big/512"))  # a 512 MiB answer
    await record(store, range(1))
    await deliver(store, tmp_path, retries=0)
    (w,) = await history(store)
    assert (w.status, w.tries) == (WebhookStatus.SENT, 1)
    # The rest is dropped with the connection: what left the receiver is what the sockets' buffers hold.
    assert receiver.streamed["/big/512"] < 32 * 1024 * 1024


async def test_retry_after_is_honoured(tmp_path: Path, store: Store, receiver: Receiver) -> None:
    await add_configuration(store, receiver.url("/retry-after/120"))
    await record(store, range(1))
    await deliver(store, tmp_path, retry_delay_s=0)
    (w,) = await history(store)
    assert (w.status, w.tries, w.last_failure) == (WebhookStatus.RETRYING, 1, "HTTP 429")
    assert await store.claim_due_webhooks(now_ms() + 100_000, 10, 1000, {}, 64) == []  # not due before 120 s
    assert len(await store.claim_due_webhooks(now_ms() + 121_000, 10, 1000, {}, 64)) == 1


async def test_a_sleeper_past_the_timeout_is_a_failed_try(tmp_path: Path, store: Store, receiver: Receiver) -> None:
    await add_configuration(store, receiver.url("/slow/7"))
    await record(store, range(1))
    await deliver(store, tmp_path, retries=0)  # the default 5 s timeout
    (w,) = await history(store)
    assert (w.status, w.last_failure) == (WebhookStatus.FAILED, "timed out after 5.0 s")
    found = await store.get_webhook("100", w.id)
    assert found is not None
    [attempt] = found[2]
    assert 4950 <= attempt.duration_ms <= 5050  # the setting, not rounded up to a whole second


async def test_connection_refused_in_plain_words(tmp_path: Path, store: Store, pipeline: Pipeline) -> None:
    await add_configuration(store, "http://127.0.0.1:9/hook")
    await record(store, range(1))
    await deliver(store, tmp_path, retries=0)
    assert (await history(store))[0].last_failure == "connection refused"


async def test_two_configurations_get_their_own_webhooks_and_signatures(
    store: Store, pipeline: Pipeline, receiver: Receiver
) -> None:
    await add_configuration(store, receiver.url("/status/200"), secret="first")
    await add_configuration(store, receiver.url("/status/200"), secret="second")
    await add_configuration(store, receiver.url("/status/200"), secret="off", disabled=True)
    await record(store, range(150))
    await pipeline.run_once()
    bodies = receiver.bodies()
    assert len(bodies) == 4
    assert len({b["id"] for b in bodies}) == 4
    secrets = {"first": 0, "second": 0}
    for got in receiver.received:
        body = got.json
        for secret in secrets:
            if body["hmac"] == erply_hmac(secret, body["id"]):
                secrets[secret] += 1
                Webhook(secret.encode()).verify(got.body, got.headers)
    assert secrets == {"first": 2, "second": 2}
    for secret in ("first", "second"):
        rows = sorted(i["rowId"] for b in bodies if b["hmac"] == erply_hmac(secret, b["id"]) for i in b["items"])
        assert rows == list(range(150))


async def test_events_for_a_disabled_configuration_are_dropped(store: Store, pipeline: Pipeline) -> None:
    await add_configuration(store, "http://127.0.0.1:9/x", disabled=True)
    assert not await record(store, range(10))
    await pipeline.run_once()
    assert await history(store) == []


async def test_a_removed_configurations_unsent_webhooks_end_failed(
    tmp_path: Path, store: Store, receiver: Receiver
) -> None:
    removed = await add_configuration(store, receiver.url("/status/200"))
    disabled = await add_configuration(store, receiver.url("/status/200"), table="invoice")
    await record(store, range(120))
    await record(store, range(5), table="invoice")
    await Pipeline(store, make_settings(tmp_path)).batcher.run_once()  # formed, not sent
    assert await store.remove_configuration("100", removed.id, 1)
    off = ConfigurationInput("invoice", disabled.action, disabled.endpoint, disabled.secret, disabled=True)
    assert await store.replace_configuration("100", disabled.id, off, 2)
    await deliver(store, tmp_path)
    assert receiver.received == []
    webhooks = await history(store)
    assert len(webhooks) == 3
    assert {(w.table, w.status, w.last_failure, w.tries) for w in webhooks} == {
        ("product", WebhookStatus.FAILED, "configuration removed", 0),
        ("invoice", WebhookStatus.FAILED, "configuration disabled", 0),
    }


async def test_a_name_that_resolves_to_a_private_address_fails_the_try(tmp_path: Path, store: Store) -> None:
    await add_configuration(store, "http://localhost:9/hook")
    await add_configuration(store, "http://10.0.0.1/hook", table="a")
    await add_configuration(store, "http://[::ffff:127.0.0.1]:9/hook", table="b")
    for table in ("product", "a", "b"):
        await record(store, range(1), table=table)
    await deliver(store, tmp_path, allow_private_endpoints=False, retries=0)
    failures = {w.table: w.last_failure for w in await history(store)}
    assert failures["product"].startswith("blocked: localhost resolves to ")
    assert "loopback" in failures["product"]
    assert failures["a"] == "blocked: 10.0.0.1 is a private address"
    assert failures["b"] == "blocked: ::ffff:7f00:1 is a loopback address"  # IPv4-mapped 127.0.0.1


async def test_an_endpoint_that_never_answers_does_not_slow_a_healthy_one(
    tmp_path: Path, store: Store, receiver: Receiver
) -> None:
    settings = make_settings(tmp_path, batch_max_events=1, max_in_flight_per_endpoint=8, max_in_flight=64)
    await add_configuration(store, receiver.url("/hang"), table="stuck")
    await add_configuration(store, receiver.url("/status/200"), table="healthy")
    await record(store, range(200), table="stuck")
    await record(store, range(200), table="healthy")
    p = Pipeline(store, settings)
    await p.start()
    try:
        async with asyncio.timeout(4.5):  # before the first 5 s timeout
            healthy = await receiver.wait_for(200, "/status/200")
        assert len(healthy) == 200
        hung = [r for r in receiver.received if r.path == "/hang"]
        assert 0 < len(hung) <= 8  # the stuck endpoint held only its own share
        stuck = await store.list_webhooks("100", "stuck", None, 100)
        assert all(w.tries == 0 for w in stuck)
    finally:
        await p.stop()


async def test_a_webhook_made_before_a_new_secret_keeps_its_hmac_and_is_signed_with_both_secrets_in_the_grace(
    tmp_path: Path, store: Store, receiver: Receiver, clock: FakeClock
) -> None:
    c = await add_configuration(store, receiver.url("/flaky/1"), secret="old", clock=clock)
    await record(store, range(1), clock=clock)
    p = Pipeline(store, make_settings(tmp_path, retry_delay_s=0.01), clock)
    await p.batcher.run_once()  # its body, hmac and all, is made with "old"
    new = ConfigurationInput("product", c.action, c.endpoint, "new")
    await store.replace_configuration("100", c.id, new, clock.now_ms(), secret_grace_ms=60_000)
    await p.egress.start()
    try:
        await p.dispatcher.run_once()  # in the grace: answered 500
        clock.advance(60_000)  # the grace ends, and the retry is due
        await p.dispatcher.run_once()
    finally:
        await p.egress.close()
    in_grace, after = receiver.received
    assert in_grace.body == after.body
    assert in_grace.json["hmac"] == erply_hmac("old", in_grace.json["id"])  # the body never changes
    assert len(in_grace.headers["webhook-signature"].split(" ")) == 2
    Webhook(b"new").verify(in_grace.body, in_grace.headers)
    Webhook(b"old").verify(in_grace.body, in_grace.headers)
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    Webhook(b"new").verify(after.body, after.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(b"old").verify(after.body, after.headers)


async def test_custom_headers_go_with_every_try_as_the_configuration_has_them_at_the_try(
    tmp_path: Path, store: Store, receiver: Receiver, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    first = {"Authorization": "Bearer t1", "X-Tenant": "acme"}
    c = await add_configuration(store, receiver.url("/flaky/2"), headers=first, clock=clock)
    await record(store, range(1), clock=clock)
    p = Pipeline(store, make_settings(tmp_path, retries=2, retry_delay_s=0.01), clock)
    await p.batcher.run_once()
    await p.egress.start()
    try:
        await p.dispatcher.run_once()
        clock.advance(50)  # the first retry comes due (after 10 ms ± 20 %)
        await p.dispatcher.run_once()
        changed = ConfigurationInput("product", c.action, c.endpoint, c.secret, headers={"Authorization": "t2"})
        await store.replace_configuration("100", c.id, changed, clock.now_ms())
        clock.advance(100)  # the second (after 20 ms ± 20 %)
        await p.dispatcher.run_once()
    finally:
        await p.egress.close()
    tries = receiver.received
    assert len(tries) == 3
    assert len({t.body for t in tries}) == 1
    for got in tries[:2]:
        assert (got.headers["Authorization"], got.headers["X-Tenant"]) == ("Bearer t1", "acme")
    assert tries[2].headers["Authorization"] == "t2"
    assert "X-Tenant" not in tries[2].headers
    for got in tries:  # beside the service's own headers, which they cannot replace
        assert got.headers["Content-Type"] == "application/json"
        assert got.headers["User-Agent"].startswith("webhook-manager/")
        Webhook(b"mySecretWord").verify(got.body, got.headers)
    assert "failed: HTTP 500" in caplog.text  # the failed tries were logged, their headers never
    for value in ("Bearer t1", "acme", "t2"):
        assert value not in caplog.text


async def test_the_purger_keeps_up_with_many_small_bundles(tmp_path: Path, store: Store, clock: FakeClock) -> None:
    await add_configuration(store, "http://127.0.0.1:9/x", disabled=True, clock=clock)
    await add_configuration(store, "http://127.0.0.1:9/x", table="t", clock=clock)
    for i in range(1200):
        await record(store, [i], table="t", clock=clock)
    batcher = Pipeline(store, make_settings(tmp_path), clock).batcher
    while (await batcher.run_once())[0]:
        pass
    purger = Purger(store, make_settings(tmp_path, retention_hours=0.000001), clock)
    clock.advance(10)  # past the retention of 3.6 ms
    # 1200 processed bundles go in one run; the unsent webhooks are not finished, so they stay.
    assert await purger.run_once() == 1200
    assert await store.list_events("100", "t", "insert", 5) == []
    assert len(await store.list_webhooks("100", None, None, 100)) == 12  # 1200 events in batches of 100


async def test_integers_beyond_64_bits_reach_the_receiver_byte_for_byte(
    store: Store, pipeline: Pipeline, receiver: Receiver
) -> None:
    await add_configuration(store, receiver.url("/status/200"))
    datas = [b"12345678901234567890123", b'[-12345678901234567890123,{"a":[98765432109876543210]}]', b"1.5"]
    items = b",".join(b'{"rowId":%d,"timestamp":"2020-01-01 00:00:00","data":%s}' % (i, d) for i, d in enumerate(datas))
    # stored as a recording call stores them (POST /v1/event keeps such integers: tests/unit/test_events.py)
    assert await store.record_events("100", "product", "insert", b"[" + items + b"]", len(datas), now_ms())
    await pipeline.run_once()
    (got,) = receiver.received
    assert got.body.endswith(b'"items":[' + items + b"]}")
