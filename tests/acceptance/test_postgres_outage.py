"""Issue 11, row 5: a PostgreSQL outage longer than the lease sends no webhook twice while no process dies
(docs/payload.md, "Store outages").

Two ``worker`` processes send 250 webhooks to a slow receiver (1 s an answer, 32 tries in flight each). When
every webhook has gone once and the last second's tries still wait for their answers, the test stops their
PostgreSQL (a private server of its own, so the shared one is untouched) for longer than a lease. The outcomes
of the tries answered meanwhile cannot be written and their leases run out; being the oldest due, they are
what a claim finds first once the store is back. Worker A reaches PostgreSQL through a TCP proxy that is cut
with the server and given back 3 s after it (processes never come back at the same instant; here it is
certain who is first): worker B, back first, must not take A's webhooks over, and A must not try again its
own. Each webhook arrives exactly once, each ends ``sent`` with one logged try, and both workers live on.

The outage is either the server stopped (calls fail at once) or packets dropped on both workers' way to it
(calls hang through the outage, then go through). Before the fix (20c593f) B sent all its claim's share of
them again: 32 of 250; with hung calls, before 8d2a1ad, 32 to 57 of 250."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from tests.acceptance.cli import PASSWORD, account_create, serve, start_worker
from tests.databases import in_thread
from tests.private_postgres import PrivatePostgres, private_postgres
from tests.receiver import ThreadedReceiver
from tests.tcp_proxy import TcpProxy, tcp_proxy
from tests.waiting import wait_until
from webhook_manager.delivery.dispatcher import LEASE_MARGIN_S

pytestmark = pytest.mark.postgres

WEBHOOKS = 250
EVENTS_PER_CALL = 1000  # ten whole webhooks a call, so the 25 000 events make exactly 250
DELIVERY_TIMEOUT_S = 2.0
LEASE_S = DELIVERY_TIMEOUT_S + LEASE_MARGIN_S  # 12 s
OUTAGE_S = LEASE_S + 4  # every lease taken before the outage has run out when it ends
LATE_S = 3.0  # worker A reaches the store this long after B: well within the 10 s B waits before taking over
PER_ENDPOINT = 32  # tries in flight at once per worker: 64 in all, each answered 1 s after it arrives
ENDPOINT = "/slow/1"
SETTINGS = {
    "WEBHOOK_MANAGER_DELIVERY_TIMEOUT_S": str(DELIVERY_TIMEOUT_S),
    "WEBHOOK_MANAGER_MAX_IN_FLIGHT_PER_ENDPOINT": str(PER_ENDPOINT),
    "WEBHOOK_MANAGER_ALLOW_PRIVATE_ENDPOINTS": "true",
}


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[ThreadedReceiver]:
    r = ThreadedReceiver()
    yield r
    r.stop()


def query(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def fetch() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url, timeout=5)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    result: list[asyncpg.Record] = in_thread(fetch())
    return result


def statuses(url: str) -> dict[str, int]:
    return {r["status"]: r["count"] for r in query(url, "SELECT status, count(*) FROM webhooks GROUP BY status")}


def record_webhooks(workdir: Path, env: dict[str, str], endpoint: str) -> None:
    """Through an ``api`` process: a configuration to ``endpoint`` and events for :data:`WEBHOOKS` webhooks."""
    with (
        serve(workdir, "--no-bootstrap-account", env=env, command="api") as api,
        httpx.Client(base_url=api.url, timeout=30) as http,
    ):
        login = http.post(
            "/api/",
            data={"request": "verifyUser", "clientCode": "100", "username": "alice", "password": PASSWORD},
        ).json()
        headers = {"clientCode": "100", "sessionKey": login["records"][0]["sessionKey"]}
        configuration = {"table": "product", "action": "insert", "endpoint": endpoint, "secret": "s"}
        assert http.post("/v1/webhook-configuration", json=configuration, headers=headers).status_code == 200
        for start in range(0, WEBHOOKS * 100, EVENTS_PER_CALL):
            items = [{"rowId": i} for i in range(start, start + EVENTS_PER_CALL)]
            body = orjson.dumps({"table": "product", "action": "insert", "items": items})
            answer = http.post("/v1/event", content=body, headers=headers)
            assert answer.json() == {"received": EVENTS_PER_CALL, "recorded": EVENTS_PER_CALL}
        api.process.send_signal(signal.SIGTERM)
        assert api.process.wait(20) == 0


def stop_cleanly(workers: list[subprocess.Popen[str]], workdir: Path) -> None:
    """SIGTERM to each worker, each still alive until then; each must exit 0."""

    def logs() -> dict[str, str]:
        return {p.name: p.read_text()[-3000:] for p in workdir.glob("worker-*.log")}

    assert [w.poll() for w in workers] == [None, None], f"a worker died: {logs()}"
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    assert [w.wait(20) for w in workers] == [0, 0], logs()


def through(proxy: TcpProxy) -> str:
    return f"postgresql://postgres@127.0.0.1:{proxy.port}/postgres"


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("refused", id="server-stopped"),  # calls fail at once
        pytest.param("hung", id="packets-dropped"),  # calls hang through the outage, then go through
    ],
)
def test_an_outage_longer_than_the_lease_sends_no_webhook_twice(
    workdir: Path, postgres: PrivatePostgres, receiver: ThreadedReceiver, kind: str
) -> None:
    env = {**SETTINGS, "WEBHOOK_MANAGER_DATABASE_URL": postgres.url}
    made = account_create(workdir, env=env)
    assert made.returncode == 0, made.stderr
    record_webhooks(workdir, env, receiver.url(ENDPOINT))

    with (
        tcp_proxy("127.0.0.1", postgres.port) as path_a,
        tcp_proxy("127.0.0.1", postgres.port) as path_b,
        ExitStack() as stack,
    ):
        env_a = {**env, "WEBHOOK_MANAGER_DATABASE_URL": through(path_a)}
        env_b = env if kind == "refused" else {**env, "WEBHOOK_MANAGER_DATABASE_URL": through(path_b)}
        workers = [stack.enter_context(start_worker(workdir, worker_env)) for worker_env in (env_a, env_b)]
        # Every webhook has gone once, and the last second's tries wait for their answers: once their leases
        # have run out they are the oldest due, so a claim after the outage finds them before anything else.
        receiver.wait_for(WEBHOOKS, timeout=30)
        if kind == "refused":
            postgres.stop()
            path_a.cut()
        else:
            path_a.freeze()
            path_b.freeze()
        cut = time.monotonic()
        at_cut = len(receiver.received)
        # not synchronisation: the outage lasts OUTAGE_S, longer than a lease, as the test says
        time.sleep(OUTAGE_S - (time.monotonic() - cut))
        outage_s, restored_ms = time.monotonic() - cut, int(time.time() * 1000)
        if kind == "refused":
            postgres.start()  # worker B reaches the store again
        else:
            path_b.thaw()
        time.sleep(LATE_S)  # not synchronisation: worker A comes back LATE_S after B, as the test says
        if kind == "refused":
            path_a.restore()
        else:
            path_a.thaw()
        wait_until(
            lambda: statuses(postgres.url) == {"sent": WEBHOOKS},
            timeout=60,
            pause=0.25,
            what=lambda: f"every webhook sent: {statuses(postgres.url)}",
        )
        stop_cleanly(workers, workdir)  # both lived through it; nothing is sent after this, so all can be counted

    # Tries answered before the store was back and logged after: their outcomes waited in memory while their
    # leases ran out.
    held = query(
        postgres.url,
        "SELECT count(*) FROM attempts WHERE at + duration_ms < $1"
        " AND pg_xact_commit_timestamp(xmin) >= to_timestamp($1 / 1000.0)",
        restored_ms,
    )[0][0]
    ids = Counter(r.json["id"] for r in receiver.received)
    doubled = sorted(i for i, n in ids.items() if n > 1)
    print(  # the figures for docs/reliability.md (shown with -s, or on a failure)
        f"outage ({kind}) {outage_s:.1f} s (lease {LEASE_S} s), worker A back {LATE_S} s later; {at_cut} of {WEBHOOKS}"
        f" received at the cut, {held} answered tries logged only once the store was back; {len(doubled)} sent twice"
    )
    assert outage_s > LEASE_S
    assert held >= PER_ENDPOINT // 2, f"only {held} tries were logged after the outage ({at_cut} received at the cut)"
    assert not doubled, f"{len(doubled)} of {WEBHOOKS} webhooks sent twice ({held} tries logged after the outage)"
    assert set(ids) == {r["id"] for r in query(postgres.url, "SELECT id FROM webhooks")}  # every webhook came
    assert len(ids) == WEBHOOKS
    tries = query(postgres.url, "SELECT count(*), count(*) FILTER (WHERE http_status = 200) FROM attempts")[0]
    assert tuple(tries) == (WEBHOOKS, WEBHOOKS)  # one try each, logged once, answered 200
