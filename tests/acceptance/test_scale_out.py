"""PostgreSQL with several ``api`` and ``worker`` processes: every event in exactly one webhook per matching
configuration, nothing sent twice but what was in flight when a worker died, and an outage survived."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.acceptance.cli import PASSWORD, Served, account_create, serve, start_worker
from tests.databases import postgres_database
from tests.receiver import ThreadedReceiver
from webhook_manager.delivery.signing import erply_hmac

pytestmark = pytest.mark.postgres


@pytest.fixture
def database() -> Iterator[str]:
    yield from postgres_database(migrated=False)


@pytest.fixture
def receiver() -> Iterator[ThreadedReceiver]:
    r = ThreadedReceiver()
    yield r
    r.stop()


class Cluster:
    """api and worker processes on one PostgreSQL database."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir, self.env = workdir, env
        self.apis: list[Served] = []
        self.workers: list[subprocess.Popen[str]] = []
        self._stack = contextlib.ExitStack()

    def start(self, apis: int, workers: int) -> Cluster:
        for _ in range(apis):
            served = serve(
                self.workdir, "--allow-private-endpoints", "--no-bootstrap-account", env=self.env, command="api"
            )
            self.apis.append(next(served))
            self._stack.callback(next, served, None)
        for _ in range(workers):
            self.workers.append(start_worker(self.workdir, self.env, "--allow-private-endpoints"))
        return self

    def stop(self) -> None:
        """SIGTERM to every process; each must stop cleanly (exit 0), but for those killed on purpose."""
        for process in [*self.workers, *(api.process for api in self.apis)]:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes = []
        for process in [*self.workers, *(api.process for api in self.apis)]:
            try:
                codes.append(process.wait(20))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(process.wait())
        self._stack.close()
        logs = {p.name: p.read_text()[-2000:] for p in self.workdir.glob("*.log")}
        assert set(codes) <= {0, -signal.SIGKILL}, (codes, logs)


def login(api: Served) -> dict[str, str]:
    answer = httpx.post(
        f"{api.url}/api/",
        data={"request": "verifyUser", "clientCode": "100", "username": "alice", "password": PASSWORD},
    ).json()
    return {"clientCode": "100", "sessionKey": answer["records"][0]["sessionKey"]}


def configure(api: Served, headers: dict[str, str], endpoint: str, table: str, secret: str) -> None:
    body = {"table": table, "action": "insert", "endpoint": endpoint, "secret": secret}
    assert httpx.post(f"{api.url}/v1/webhook-configuration", json=body, headers=headers).status_code == 200


def record(apis: list[Served], headers: list[dict[str, str]], table: str, rows: range, call: int = 1000) -> None:
    for n, start in enumerate(range(rows.start, rows.stop, call)):
        api = n % len(apis)
        items = [{"rowId": i} for i in range(start, min(start + call, rows.stop))]
        body = orjson.dumps({"table": table, "action": "insert", "items": items})
        answer = httpx.post(f"{apis[api].url}/v1/event", content=body, headers=headers[api], timeout=30)
        assert answer.status_code == 200, answer.text


def wait_for_rows(receiver: ThreadedReceiver, expected: Counter[tuple[str, str, int]], timeout: float) -> Counter[Any]:
    """Wait until every (secret, table, rowId) expected has arrived; return what arrived."""
    deadline = time.monotonic() + timeout
    while True:
        got: Counter[tuple[str, str, int]] = Counter()
        for r in receiver.received:
            body = r.json
            secret = next(s for s in ("a", "b", "c") if erply_hmac(s, body["id"]) == body["hmac"])
            got.update((secret, body["table"], item["rowId"]) for item in body["items"])
        if all(got[k] >= n for k, n in expected.items()):
            return got
        assert time.monotonic() < deadline, f"{sum(got.values())} of {sum(expected.values())} events arrived"
        time.sleep(0.2)


def account(workdir: Path, env: dict[str, str]) -> None:
    made = account_create(workdir, env=env)
    assert made.returncode == 0, made.stderr


def test_two_apis_and_three_workers_deliver_50000_events_exactly_once(
    workdir: Path, database: str, receiver: ThreadedReceiver
) -> None:
    env = {"WEBHOOK_MANAGER_DATABASE_URL": database, "WEBHOOK_MANAGER_BATCH_LINGER_MS": "50"}
    account(workdir, env)
    cluster = Cluster(workdir, env).start(apis=2, workers=3)
    try:
        headers = [login(api) for api in cluster.apis]
        configure(cluster.apis[0], headers[0], receiver.url("/status/200"), "product", "a")
        configure(cluster.apis[1], headers[1], receiver.url("/status/200"), "product", "b")
        configure(cluster.apis[0], headers[0], receiver.url("/status/200"), "invoice", "c")
        record(cluster.apis, headers, "product", range(30_000))
        record(cluster.apis, headers, "invoice", range(20_000))
        expected = Counter({("a", "product", i): 1 for i in range(30_000)})
        expected.update({("b", "product", i): 1 for i in range(30_000)})
        expected.update({("c", "invoice", i): 1 for i in range(20_000)})
        got = wait_for_rows(receiver, expected, timeout=120)
        time.sleep(1)  # anything sent twice would arrive by now
        got = wait_for_rows(receiver, expected, timeout=1)
        assert got == expected  # every event in exactly one webhook per matching configuration
        ids = Counter(r.json["id"] for r in receiver.received)
        assert ids.most_common(1)[0][1] == 1  # no webhook sent twice
        assert all(int(r.json["eventCount"]) <= 100 for r in receiver.received)
    finally:
        cluster.stop()


def test_a_worker_killed_mid_run_loses_nothing(workdir: Path, database: str, receiver: ThreadedReceiver) -> None:
    env = {
        "WEBHOOK_MANAGER_DATABASE_URL": database,
        "WEBHOOK_MANAGER_BATCH_MAX_EVENTS": "10",
        "WEBHOOK_MANAGER_DELIVERY_TIMEOUT_S": "1",
        "WEBHOOK_MANAGER_MAX_IN_FLIGHT_PER_ENDPOINT": "4",
    }
    account(workdir, env)
    cluster = Cluster(workdir, env).start(apis=1, workers=3)
    try:
        headers = [login(cluster.apis[0])]
        configure(cluster.apis[0], headers[0], receiver.url("/slow/0.05"), "product", "a")
        record(cluster.apis, headers, "product", range(3000))
        receiver.wait_for(30)
        cluster.workers[0].send_signal(signal.SIGKILL)
        cluster.workers[0].wait(10)
        before_kill = [r.json["id"] for r in receiver.received]
        got = wait_for_rows(receiver, Counter({("a", "product", i): 1 for i in range(3000)}), timeout=120)
        assert set(got) == {("a", "product", i) for i in range(3000)}
        ids = Counter(r.json["id"] for r in receiver.received)
        doubled = {i for i, n in ids.items() if n > 1}
        assert doubled <= set(before_kill)  # only what the dead worker had in flight
        assert len(doubled) <= 4 + 4  # its share of tries in flight (4), plus any it had claimed and not begun
    finally:
        cluster.stop()


def test_postgresql_stopped_for_10_s_then_started_loses_nothing(
    workdir: Path, database: str, receiver: ThreadedReceiver
) -> None:
    env = {"WEBHOOK_MANAGER_DATABASE_URL": database}
    account(workdir, env)
    cluster = Cluster(workdir, env).start(apis=1, workers=2)
    try:
        api = cluster.apis[0]
        headers = [login(api)]
        configure(api, headers[0], receiver.url("/status/200"), "product", "a")
        record(cluster.apis, headers, "product", range(5000))
        receiver.wait_for(1)
        pg_ctl("stop")
        try:
            time.sleep(1)
            ready = httpx.get(f"{api.url}/readyz", timeout=10)
            assert ready.status_code == 503 and "store unavailable" in ready.json()["error"]
            outage = httpx.post(
                f"{api.url}/v1/event",
                json={"table": "product", "action": "insert", "items": [{"rowId": 1}]},
                headers=headers[0],
            )
            assert outage.status_code == 503  # refused, not accepted and lost
            time.sleep(9)
        finally:
            pg_ctl("start")
        deadline = time.monotonic() + 60
        while httpx.get(f"{api.url}/readyz", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "the api did not reconnect"
            time.sleep(0.5)
        record(cluster.apis, headers, "product", range(5000, 6000))
        got = wait_for_rows(receiver, Counter({("a", "product", i): 1 for i in range(6000)}), timeout=120)
        assert set(got) == {("a", "product", i) for i in range(6000)}
        assert all(cluster_process.poll() is None for cluster_process in cluster.workers)
    finally:
        cluster.stop()


def pg_ctl(action: str) -> None:
    version = next(iter(sorted(p.name for p in Path("/etc/postgresql").iterdir())))
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action], check=True, timeout=60)
    if action == "start":
        for _ in range(60):
            if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"], check=False).returncode == 0:
                return
            time.sleep(0.5)
