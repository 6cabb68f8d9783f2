"""kill -9 of ``webhook-manager capture`` in the middle of a stream of transactions, then a new start: every
change is in the store exactly once (docs/capture.md: the position advances only with the events it
produced)."""

from __future__ import annotations

import contextlib
import functools
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
from tests.waiting import wait_until
from webhook_manager.store import migrated_store

TRANSACTIONS = 400


@pytest.fixture(params=KINDS)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AppDb]:
    with app_database(request.param, tmp_path) as app:
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

    def passed(self, transactions: int) -> bool:
        """It has committed that many transactions, or it has stopped."""
        return self.done >= transactions or not self.is_alive()

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
                time.sleep(0.005)  # not synchronisation: the application writes at a steady pace, as one does
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
    store_file = workdir / "var" / "webhook-manager.db"
    writer = Writer(app)
    kills = 0
    with contextlib.ExitStack() as stack:
        log = stack.enter_context((workdir / "capture.log").open("a"))

        def start() -> subprocess.Popen[bytes]:
            process = subprocess.Popen(args, cwd=workdir, stdout=log, stderr=log)
            stack.callback(kill, process)  # also when the test fails
            return process

        capture = start()
        writer.start()
        for at in (TRANSACTIONS // 3, 2 * TRANSACTIONS // 3):
            wait_until(functools.partial(writer.passed, at), timeout=60, pause=0.01)
            # not synchronisation: the kill comes at a random moment after that transaction, mid-stream
            time.sleep(random.Random(at).uniform(0.0, 0.05))
            capture.send_signal(signal.SIGKILL)
            capture.wait(timeout=10)
            kills += 1
            capture = start()
        writer.join(timeout=120)
        assert writer.error is None, writer.error
        wait_until(
            lambda: stored_events(store_file).total() >= writer.expected.total(),
            timeout=60,
            pause=0.2,
            what=lambda: f"{writer.expected.total()} events stored ({stored_events(store_file).total()} so far)",
        )
        # Stopped, the capture records nothing more: what the store holds now is all it will ever hold, so a
        # change recorded twice shows in the exact count below.
        capture.send_signal(signal.SIGTERM)
        capture.wait(timeout=20)
    got = stored_events(store_file)
    assert kills == 2
    assert capture.returncode == 0, (workdir / "capture.log").read_text()
    missing = writer.expected - got
    doubled = got - writer.expected
    assert not missing, (sorted(missing)[:10], sorted(doubled)[:10])
    assert not doubled, sorted(doubled)[:10]
    assert got.total() > 4000


def kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()
