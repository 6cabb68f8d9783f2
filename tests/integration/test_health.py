"""``/healthz`` and ``/readyz``."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg2
import pytest

from tests.conftest import Client, create_account, run, serving, verify_user
from tests.waiting import wait_until
from webhook_manager.domain.errors import StoreUnavailable
from webhook_manager.settings import Settings
from webhook_manager.store import Store, open_store
from webhook_manager.store.dialect import WriteFailures


def test_both_answer_while_the_store_does(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    assert http.get("/readyz").json() == {"status": "ok"}


class _BrokenStore:
    """A real SQLite store whose ping fails, as when the database cannot be reached."""

    def __init__(self, inner: Store) -> None:
        self._inner = inner

    async def ping(self) -> None:
        raise StoreUnavailable("store unavailable: disk I/O error")

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


def test_readyz_is_503_while_the_store_does_not_answer(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'wm.db'}")
    inner = run(open_store(settings.database_url))
    run(inner.migrate())
    try:
        with serving(settings, store=_BrokenStore(inner)) as live, httpx.Client(base_url=live.url) as http:
            assert http.get("/healthz").status_code == 200
            answer = http.get("/readyz")
            assert answer.status_code == 503
            assert "store unavailable" in answer.json()["error"]
    finally:
        run(inner.close())


@contextlib.contextmanager
def write_lock_held(store_url: str) -> Iterator[None]:
    """Another session holds what every write of the store needs, as a backup tool or a stuck migration
    would: SQLite's write lock; on PostgreSQL, locks that block writes (not reads) of the tables in use."""
    if store_url.startswith("sqlite"):
        db = sqlite3.connect(store_url.removeprefix("sqlite:///"), isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            db.execute("ROLLBACK")
            db.close()
        return
    conn = psycopg2.connect(store_url)
    try:
        with conn.cursor() as cur:
            cur.execute("LOCK TABLE event_bundles, store_probe IN EXCLUSIVE MODE")  # opens a transaction
        yield
    finally:
        conn.rollback()
        conn.close()


def test_under_a_held_write_lock_writes_fail_fast_with_503_and_readyz_says_so(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(WriteFailures, "KEPT_S", 0.5)  # how long readiness remembers a failed write
    settings = Settings(database_url=store_url, allow_private_endpoints=True)
    with serving(settings) as live, httpx.Client(base_url=live.url, timeout=30) as http:
        create_account(settings, "100", "alice", "correct horse battery")
        alice = login(http)
        body = {"table": "product", "action": "insert", "endpoint": "http://127.0.0.1:9/", "secret": "s"}
        assert http.post("/v1/webhook-configuration", json=body, headers=alice.headers).status_code == 200
        event = {"table": "product", "action": "insert", "items": [{"rowId": 1}]}

        def post_event() -> tuple[int, float]:
            started = time.perf_counter()
            answer = httpx.post(f"{live.url}/v1/event", json=event, headers=alice.headers, timeout=30)
            return answer.status_code, time.perf_counter() - started

        with write_lock_held(store_url):
            with ThreadPoolExecutor(5) as pool:  # at once, so some wait behind the others
                answers = list(pool.map(lambda _: post_event(), range(5)))
            assert [status for status, _ in answers] == [503] * 5, answers
            print(f"held write lock: 5 calls at once answered 503 in {', '.join(f'{t:.2f}' for _, t in answers)} s")
            assert max(took for _, took in answers) < 2.0, answers
            started = time.perf_counter()
            assert http.get("/readyz").status_code == 503
            assert time.perf_counter() - started < 2.5
        wait_until(lambda: http.get("/readyz").status_code == 200, timeout=10, what="/readyz to be 200 again")
        assert post_event()[0] == 200
        listed = http.get("/v1/event", params={"table": "product", "action": "insert"}, headers=alice.headers)
        assert len(listed.json()) == 1  # of the six calls, the one answered 200; nothing of the 503 ones


def login(http: httpx.Client) -> Client:
    answer = verify_user(http, "100", "alice", "correct horse battery")
    return Client("100", answer["records"][0]["sessionKey"])
