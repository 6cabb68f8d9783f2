"""``GET /metrics`` over real HTTP after a known workload: exact counters and histogram counts, and the
store-level gauges while a backlog builds and after it drains (docs/metrics.md). Each test runs on each store."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.clock import FakeClock
from tests.conftest import Client, create_account, serving, verify_user
from tests.integration.pipeline_helpers import add_configuration, record
from tests.receiver import ThreadedReceiver
from tests.waiting import wait_until
from webhook_manager.delivery.batcher import Batcher
from webhook_manager.delivery.pipeline import Pipeline
from webhook_manager.domain.clock import SYSTEM_CLOCK, Clock
from webhook_manager.observability.metrics import Metrics
from webhook_manager.settings import Settings
from webhook_manager.store import Store

PASSWORD = "correct horse battery"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(http: httpx.Client) -> Samples:
    """Every sample of ``/metrics``, parsed by prometheus_client's own parser: (name, labels) → value."""
    answer = http.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def scrape_until(http: httpx.Client, holds: Callable[[Samples], bool], what: str) -> Samples:
    """Scrape until the samples satisfy ``holds`` (the store-level gauges are read every 0.1 s here)."""

    def check() -> Samples | None:
        samples = scrape(http)
        return samples if holds(samples) else None

    return wait_until(check, what=what)


@pytest.fixture
def receiver() -> Iterator[ThreadedReceiver]:
    r = ThreadedReceiver()
    yield r
    r.stop()


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound once, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_for(store_url: str, **changes: Any) -> Settings:
    base: dict[str, Any] = {
        "database_url": store_url,
        "allow_private_endpoints": True,
        "batch_linger_ms": 0,
        "retries": 0,
        "delivery_timeout_s": 0.5,
        "metrics_refresh_s": 0.1,
    }
    return Settings(**{**base, **changes})


def login(http: httpx.Client, settings: Settings) -> Client:
    create_account(settings, "100", "alice", PASSWORD)
    return Client("100", verify_user(http, "100", "alice", PASSWORD)["records"][0]["sessionKey"])


def configure(http: httpx.Client, who: Client, table: str, action: str, endpoint: str) -> None:
    body = {"table": table, "action": action, "endpoint": endpoint, "secret": "mySecretWord"}
    answer = http.post("/v1/webhook-configuration", json=body, headers=who.headers)
    assert answer.status_code == 200, answer.text


def post_events(http: httpx.Client, who: Client, table: str, action: str, count: int) -> dict[str, Any]:
    items = [{"rowId": n, "timestamp": "2020-01-01 00:00:00", "data": None} for n in range(1, count + 1)]
    body = orjson.dumps({"table": table, "action": action, "items": items})
    answer = http.post("/v1/event", content=body, headers=who.headers)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_counters_and_histograms_after_a_known_workload(store_url: str, receiver: ThreadedReceiver) -> None:
    settings = settings_for(store_url)
    with serving(settings, run_pipeline=True) as live, httpx.Client(base_url=live.url, timeout=30) as http:
        who = login(http, settings)
        configure(http, who, "product", "insert", receiver.url("/status/200"))
        configure(http, who, "product", "update", receiver.url("/status/500"))
        configure(http, who, "product", "delete", receiver.url("/redirect"))
        configure(http, who, "invoice", "insert", receiver.url("/hang"))
        configure(http, who, "order", "insert", receiver.url("/status/404"))
        configure(http, who, "stock", "insert", f"http://127.0.0.1:{closed_port()}/")  # connection refused
        before = scrape(http)
        assert value(before, "webhook_manager_tries_total", outcome="success") == 0  # every outcome shows, at 0
        assert value(before, "webhook_manager_events_received_total", source="api") == 0

        assert post_events(http, who, "product", "insert", 250)["recorded"] == 250  # 100 + 100 + 50
        post_events(http, who, "product", "update", 1)
        post_events(http, who, "product", "delete", 2)
        post_events(http, who, "invoice", "insert", 1)
        post_events(http, who, "order", "insert", 1)
        post_events(http, who, "stock", "insert", 1)
        assert post_events(http, who, "nothing", "insert", 5)["recorded"] == 0  # no configuration: dropped

        def all_tried() -> Samples | None:
            samples = scrape(http)
            ended = sum(
                value(samples, "webhook_manager_webhooks_ended_total", status=s) or 0 for s in ("sent", "failed")
            )
            return samples if ended == 8 else None

        samples = wait_until(all_tried, what="eight webhooks ended")

    assert value(samples, "webhook_manager_events_received_total", source="api") == 261
    assert value(samples, "webhook_manager_events_recorded_total", source="api") == 256
    assert value(samples, "webhook_manager_events_dropped_total", source="api") == 5
    assert value(samples, "webhook_manager_webhooks_formed_total", table="product", action="insert") == 3
    assert value(samples, "webhook_manager_webhooks_formed_total", table="product", action="update") == 1
    assert value(samples, "webhook_manager_webhooks_formed_total", table="product", action="delete") == 1
    assert value(samples, "webhook_manager_webhooks_formed_total", table="invoice", action="insert") == 1
    assert value(samples, "webhook_manager_webhooks_formed_total", table="order", action="insert") == 1
    assert value(samples, "webhook_manager_webhook_events_count") == 8
    assert value(samples, "webhook_manager_webhook_events_sum") == 256
    assert value(samples, "webhook_manager_webhook_events_bucket", le="50.0") == 6  # 1, 2, 1, 1, 1 and the 50
    tries = {
        outcome: value(samples, "webhook_manager_tries_total", outcome=outcome)
        for outcome in ("success", "http_4xx", "http_5xx", "http_other", "redirect", "timeout", "connection", "blocked")
    }
    assert tries == {
        "success": 3,
        "http_4xx": 1,
        "http_5xx": 1,
        "http_other": 0,
        "redirect": 1,
        "timeout": 1,
        "connection": 1,
        "blocked": 0,
    }
    assert value(samples, "webhook_manager_try_duration_seconds_count", outcome="success") == 3
    assert value(samples, "webhook_manager_try_duration_seconds_count", outcome="timeout") == 1
    # the timed-out try lasted its whole limit (0.5 s): past the 0.25 s bucket, within the 1 s one
    assert value(samples, "webhook_manager_try_duration_seconds_bucket", outcome="timeout", le="0.25") == 0
    assert value(samples, "webhook_manager_try_duration_seconds_bucket", outcome="timeout", le="1.0") == 1
    assert value(samples, "webhook_manager_webhooks_ended_total", status="sent") == 3
    assert value(samples, "webhook_manager_webhooks_ended_total", status="failed") == 5
    assert value(samples, "webhook_manager_event_age_at_first_send_seconds_count") == 8
    assert value(samples, "webhook_manager_tries_in_flight") == 0
    assert not [name for name, labels in samples if any(k == "endpoint_host" for k, _ in labels)]  # off by default


def test_gauges_show_a_backlog_and_its_draining(store_url: str, receiver: ThreadedReceiver) -> None:
    settings = settings_for(store_url)
    # ``api`` alone: events are recorded and nothing forms or sends them.
    with serving(settings) as live, httpx.Client(base_url=live.url, timeout=30) as http:
        who = login(http, settings)
        configure(http, who, "product", "insert", receiver.url("/status/200"))
        empty = wait_until(lambda: scrape(http), what="a scrape")
        assert value(empty, "webhook_manager_pending_events") == 0
        assert value(empty, "webhook_manager_oldest_pending_event_age_seconds") == 0
        post_events(http, who, "product", "insert", 250)
        backlog = scrape_until(http, lambda s: value(s, "webhook_manager_pending_events") == 250, "250 pending events")
        assert (value(backlog, "webhook_manager_oldest_pending_event_age_seconds") or 0) > 0
        assert value(backlog, "webhook_manager_webhooks_pending") == 0
        assert value(backlog, "webhook_manager_tries_in_flight") == 0  # no pipeline in this process

    # ``serve`` over the same store: the backlog drains, and every gauge goes back to 0.
    with serving(settings, run_pipeline=True) as live, httpx.Client(base_url=live.url, timeout=30) as http:
        receiver.wait_for(3)

        def drained() -> Samples | None:
            s = scrape(http)
            names = ("pending_events", "webhooks_pending", "webhooks_retrying", "webhooks_due", "webhooks_leased")
            return s if all(value(s, f"webhook_manager_{n}") == 0 for n in names) else None

        after = wait_until(drained, what="the backlog drained")
        assert value(after, "webhook_manager_oldest_pending_event_age_seconds") == 0
        assert value(after, "webhook_manager_oldest_due_webhook_age_seconds") == 0
        assert value(after, "webhook_manager_webhooks_ended_total", status="sent") == 3


def test_a_failing_backlog_shows_retrying_and_due_webhooks(store_url: str, receiver: ThreadedReceiver) -> None:
    settings = settings_for(store_url, retries=3, retry_delay_s=3600)
    with serving(settings, run_pipeline=True) as live, httpx.Client(base_url=live.url, timeout=30) as http:
        who = login(http, settings)
        configure(http, who, "product", "insert", receiver.url("/status/503"))
        post_events(http, who, "product", "insert", 150)
        retrying = scrape_until(http, lambda s: value(s, "webhook_manager_webhooks_retrying") == 2, "two retrying")
        assert value(retrying, "webhook_manager_tries_total", outcome="http_5xx") == 2
        assert value(retrying, "webhook_manager_webhooks_due") == 0  # the next try is an hour away
        assert value(retrying, "webhook_manager_webhooks_ended_total", status="failed") == 0


def test_endpoint_hosts_are_labels_only_when_asked(store_url: str, receiver: ThreadedReceiver) -> None:
    settings = settings_for(store_url, metrics_endpoint_host=True)
    with serving(settings, run_pipeline=True) as live, httpx.Client(base_url=live.url, timeout=30) as http:
        who = login(http, settings)
        configure(http, who, "product", "insert", receiver.url("/status/200").replace("127.0.0.1", "localhost"))
        post_events(http, who, "product", "insert", 1)
        samples = scrape_until(
            http,
            lambda s: value(s, "webhook_manager_tries_total", outcome="success", endpoint_host="localhost") == 1,
            "a try labelled with its host",
        )
    assert (
        value(samples, "webhook_manager_try_duration_seconds_count", outcome="success", endpoint_host="localhost") == 1
    )


def test_metrics_off_means_no_metrics_page(store_url: str) -> None:
    with (
        serving(settings_for(store_url, metrics=False)) as live,
        httpx.Client(base_url=live.url, timeout=30) as http,
    ):
        assert http.get("/metrics").status_code == 404


async def test_gauges_are_the_stores_backlog_at_the_scrapes_time(store: Store, tmp_path: Path) -> None:
    clock = FakeClock()
    metrics = Metrics(refresh_s=0)
    await add_configuration(store, "https://receiver.example/hook", clock=clock)
    await record(store, range(1, 251), clock=clock)
    clock.advance(5000)
    waiting = await scrape_metrics(metrics, store, clock)
    assert waiting["webhook_manager_pending_events"] == 250
    assert waiting["webhook_manager_oldest_pending_event_age_seconds"] == 5.0
    assert waiting["webhook_manager_webhooks_due"] == 0
    # formed (no dispatcher): three webhooks due since now, the oldest of them due 2 s when scraped
    batcher = Batcher(store, settings_for(f"sqlite:///{tmp_path / 'unused.db'}"), lambda: None, clock, metrics)
    assert await batcher.run_once() == (3, None)
    clock.advance(2000)
    due = await scrape_metrics(metrics, store, clock)
    assert due["webhook_manager_pending_events"] == 0
    assert due["webhook_manager_oldest_pending_event_age_seconds"] == 0
    assert due["webhook_manager_webhooks_pending"] == 3
    assert due["webhook_manager_webhooks_due"] == 3
    assert due["webhook_manager_oldest_due_webhook_age_seconds"] == 2.0
    assert due["webhook_manager_webhooks_formed_total{action=insert,table=product}"] == 3


async def test_a_blocked_try_counts_as_blocked(store: Store, tmp_path: Path) -> None:
    metrics = Metrics(refresh_s=0)
    settings = settings_for(f"sqlite:///{tmp_path / 'unused.db'}", allow_private_endpoints=False)
    await add_configuration(store, "http://127.0.0.1:9/hook")  # stored as it is: the API would refuse it
    await record(store, [1])
    pipeline = Pipeline(store, settings, metrics=metrics)
    await pipeline.egress.start()
    try:
        await pipeline.run_once()
    finally:
        await pipeline.egress.close()
    samples = await scrape_metrics(metrics, store, SYSTEM_CLOCK)
    assert samples["webhook_manager_tries_total{outcome=blocked}"] == 1
    assert samples["webhook_manager_webhooks_ended_total{status=failed}"] == 1
    assert samples["webhook_manager_event_age_at_first_send_seconds_count"] == 0  # nothing was sent


async def scrape_metrics(metrics: Metrics, store: Store, clock: Clock) -> dict[str, float]:
    """The samples of ``metrics`` at ``clock``'s now, by ``name{label=value,…}`` (no labels: the bare name)."""
    text = (await metrics.exposition(store, clock.now_ms)).decode()
    return {
        sample.name
        + (
            "{" + ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items())) + "}" if sample.labels else ""
        ): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
