"""kill -9 of ``webhook-manager capture`` in the middle of a stream of transactions, then a new start: every
change is in the store exactly once (docs/capture.md: the position advances only with the events it
produced)."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.acceptance.cli import COMMAND
from tests.capture_apps import KINDS, AppDb, app_database
from tests.databases import in_thread
from tests.integration.pipeline_helpers import add_configuration
from webhook_manager.store import migrated_store

TRANSACTIONS = 400


@pytest.fixture(params=KINDS)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AppDb]:
    for app in app_database(request.param, tmp_path):
        app.execute("CREATE TABLE item (id integer PRIMARY KEY, n integer NOT NULL)")
        yield app


def stored_events(store_file: Path) -> Counter[tuple[str, int]]:
    """(action, rowId) of every event in the store, counted."""
    got: Counter[tuple[str, int]] = Counter()
    with sqlite3.connect(store_file) as db:
        for action, items in db.execute("SELECT action, items FROM event_bundles WHERE table_name = 'item'"):
            got.update((action, item["rowId"]) for item in orjson.loads(items))
    return got


class Writer(threading.Thread):
    """The application: transactions of 1 to 40 inserts, every third one also updating five earlier rows."""

    def __init__(self, app: AppDb) -> None:
        super().__init__(daemon=True)
        self.app = app
        self.expected: Counter[tuple[str, int]] = Counter()
        self.done = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        rng = random.Random(5)
        next_id = 1
        try:
            for tx in range(TRANSACTIONS):
                ids = list(range(next_id, next_id + rng.randint(1, 40)))
                next_id = ids[-1] + 1
                work: list[tuple[str, list[tuple[int, ...]]]] = [
                    ("INSERT INTO item (id, n) VALUES (?, 0)", [(i,) for i in ids])
                ]
                updated = rng.sample(range(1, ids[0]), 5) if tx % 3 == 2 and ids[0] > 5 else []
                if updated:
                    work.append(("UPDATE item SET n = n + 1 WHERE id = ?", [(i,) for i in updated]))
                self.app.executemany_in_one(work)
                self.expected.update(("insert", i) for i in ids)
                self.expected.update(("update", i) for i in updated)
                self.done = tx + 1
                time.sleep(0.005)
        except BaseException as exc:
            self.error = exc


def test_kill_9_mid_stream_then_start_again_loses_and_doubles_nothing(workdir: Path, app: AppDb) -> None:
    spec = app.spec(("item",))
    if app.is_postgres:
        where = ["--dsn", app.where, "--slot", app.slot, "--mode", spec.mode]
    elif app.is_mysql:
        where = ["--dsn", app.where]
    else:
        where = ["--database", app.where]
    args = [COMMAND, "capture", spec.kind, *where, "--client-code", "100", "--tables", "item"]
    assert subprocess.run([*args, "--setup"], cwd=workdir, capture_output=True, timeout=60).returncode == 0

    async def configure() -> None:
        async with migrated_store(f"sqlite:///{workdir / 'var' / 'webhook-manager.db'}") as store:
            for action in ("insert", "update"):
                await add_configuration(store, "https://example.com/hook", table="item", action=action)

    in_thread(configure())
    log = (workdir / "capture.log").open("a")

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(args, cwd=workdir, stdout=log, stderr=log)

    writer = Writer(app)
    capture = start()
    writer.start()
    kills = 0
    try:
        for at in (TRANSACTIONS // 3, 2 * TRANSACTIONS // 3):
            while writer.done < at and writer.is_alive():
                time.sleep(0.01)
            time.sleep(random.Random(at).uniform(0.0, 0.05))
            capture.send_signal(signal.SIGKILL)
            capture.wait(timeout=10)
            kills += 1
            capture = start()
        writer.join(timeout=120)
        assert writer.error is None, writer.error
        store_file = workdir / "var" / "webhook-manager.db"
        deadline = time.monotonic() + 60
        while stored_events(store_file).total() < writer.expected.total() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)  # a double would show now
        got = stored_events(store_file)
    finally:
        capture.send_signal(signal.SIGTERM)
        capture.wait(timeout=20)
        log.close()
    assert kills == 2
    assert capture.returncode == 0, (workdir / "capture.log").read_text()
    missing = writer.expected - got
    doubled = got - writer.expected
    assert not missing and not doubled, (sorted(missing)[:10], sorted(doubled)[:10])
    assert got.total() > 4000
