"""The real commands' metrics: ``api`` on its API port, ``worker`` on a port of its own (``metrics_port``), each
with its own counters and the same store-level gauges (docs/metrics.md)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.acceptance.cli import PASSWORD, account_create, free_port, serve, start_worker, wm
from tests.databases import postgres_database
from tests.receiver import ThreadedReceiver
from tests.waiting import wait_until

pytestmark = pytest.mark.postgres

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def receiver() -> Iterator[ThreadedReceiver]:
    r = ThreadedReceiver()
    yield r
    r.stop()


def scrape(url: str) -> Samples | None:
    """The samples of ``url`` (a /metrics page), None while nothing answers there."""
    try:
        answer = httpx.get(url, timeout=5)
    except httpx.TransportError:
        return None
    assert answer.status_code == 200, answer.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def test_api_and_worker_each_export_their_own_counters_and_the_same_gauges(
    tmp_path: Path, receiver: ThreadedReceiver
) -> None:
    port = free_port()
    with postgres_database(migrated=False) as url:
        env = {
            "WEBHOOK_MANAGER_DATABASE_URL": url,
            "WEBHOOK_MANAGER_RETRIES": "0",
            "WEBHOOK_MANAGER_BATCH_LINGER_MS": "0",
            "WEBHOOK_MANAGER_METRICS_PORT": str(port),
            "WEBHOOK_MANAGER_METRICS_REFRESH_S": "0.2",
        }
        assert wm(tmp_path, "migrate", env=env).returncode == 0
        assert account_create(tmp_path, env=env).returncode == 0
        with (
            serve(tmp_path, "--allow-private-endpoints", "--no-bootstrap-account", env=env, command="api") as api,
            start_worker(tmp_path, env, "--allow-private-endpoints"),
            httpx.Client(base_url=api.url, timeout=30) as http,
        ):
            login = {"request": "verifyUser", "clientCode": "100", "username": "alice", "password": PASSWORD}
            key = http.post("/api/", data=login).json()["records"][0]["sessionKey"]
            headers = {"clientCode": "100", "sessionKey": key}
            configuration = {"table": "product", "action": "insert", "endpoint": receiver.url("/status/200")}
            assert http.post("/v1/webhook-configuration", json={**configuration, "secret": "s"}, headers=headers)
            items = [{"rowId": n, "timestamp": "2020-01-01 00:00:00", "data": None} for n in (1, 2, 3)]
            body = orjson.dumps({"table": "product", "action": "insert", "items": items})
            assert http.post("/v1/event", content=body, headers=headers).json()["recorded"] == 3
            receiver.wait_for(1)

            def worker_done() -> Samples | None:
                samples = scrape(f"http://127.0.0.1:{port}/metrics")
                if samples is None:
                    return None
                sent = samples.get(("webhook_manager_webhooks_ended_total", (("status", "sent"),)))
                return samples if sent == 1 and samples.get(("webhook_manager_webhooks_pending", ())) == 0 else None

            worker = wait_until(worker_done, what="the worker's metrics to show the webhook sent")

            def api_drained() -> Samples | None:
                samples = scrape(f"{api.url}/metrics")
                return samples if samples and samples.get(("webhook_manager_webhooks_pending", ())) == 0 else None

            front = wait_until(api_drained, what="the api's gauges to show the backlog drained")

    # counters are each process's own: the api received the events, the worker formed and sent the webhook
    assert front[("webhook_manager_events_received_total", (("source", "api"),))] == 3
    assert worker[("webhook_manager_events_received_total", (("source", "api"),))] == 0
    assert worker[("webhook_manager_webhooks_formed_total", (("action", "insert"), ("table", "product")))] == 1
    assert ("webhook_manager_webhooks_formed_total", (("action", "insert"), ("table", "product"))) not in front
    assert front[("webhook_manager_webhooks_ended_total", (("status", "sent"),))] == 0
    # the store-level gauges are the store's: the same on both
    for gauge in ("pending_events", "webhooks_pending", "webhooks_retrying", "webhooks_due", "webhooks_leased"):
        assert front[(f"webhook_manager_{gauge}", ())] == worker[(f"webhook_manager_{gauge}", ())] == 0


def test_a_worker_whose_metrics_port_is_taken_says_so(tmp_path: Path) -> None:
    with socket.socket() as taken, postgres_database() as url:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"WEBHOOK_MANAGER_DATABASE_URL": url, "WEBHOOK_MANAGER_METRICS_PORT": str(port)}
        done = wm(tmp_path, "worker", env=env)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"webhook-manager: error: cannot listen on 127.0.0.1:{port} (WEBHOOK_MANAGER_METRICS_PORT):"
        " address already in use"
    )
    assert "Traceback" not in done.stderr
