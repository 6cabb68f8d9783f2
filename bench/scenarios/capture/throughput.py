"""(a) changes/s captured: a table filled with ``--rows`` rows before the capture is set up, a configuration for
(product, update), and the real ``webhook-manager capture …`` command running alone (no ``serve``: nothing else
competes for the store). ONE ``UPDATE product SET price = price + 1`` is committed; changes/s = rows / (time from
the commit's return to the moment the store holds all of its update events, polled every STORE_POLL_S as the sum
of ``event_count`` of ``event_bundles``). Also the CPU time of the capture process and of the database server's
side from the commit on, and (r), the raw read of the same changes (:mod:`.raw_read`), once the capture stopped.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import uuid
from typing import Any

import psycopg2

from bench.harness.databases import is_postgres, pg_connect
from bench.harness.limits import BenchError, Watch
from bench.harness.processes import ChildProcess, cpu_seconds, cpu_sum
from bench.harness.report import log
from bench.harness.service import TABLE, capture_command
from bench.scenarios.capture.apps import MysqlApp, capture_backends
from bench.scenarios.capture.context import Context, add_configuration, new_app, new_store, set_up_capture
from bench.scenarios.capture.raw_read import RawRead

STORE_POLL_S = 0.005  # how often (a) asks the store how many events it holds
DEAD_ENDPOINT = "http://127.0.0.1:9/unused"  # (a) runs no serve: nothing is ever sent there


class StoreReader:
    """How many events of (product, action) the store holds: the sum of ``event_count`` of its bundles."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite: sqlite3.Connection | None = None
        self.pg: Any = None
        if is_postgres(url):
            self.pg = pg_connect(url)
            self.pg.autocommit = True
        else:
            self.sqlite = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
            self.sqlite.execute("PRAGMA busy_timeout = 10000")

    def count(self, action: str) -> int:
        query = "SELECT coalesce(sum(event_count), 0) FROM event_bundles WHERE table_name = {p} AND action = {p}"
        if self.sqlite is not None:
            return int(self.sqlite.execute(query.format(p="?"), (TABLE, action)).fetchone()[0])
        with self.pg.cursor() as cur:
            cur.execute(query.format(p="%s"), (TABLE, action))
            return int(cur.fetchone()[0])

    def close(self) -> None:
        if self.sqlite is not None:
            self.sqlite.close()
        if self.pg is not None:
            with contextlib.suppress(psycopg2.Error):
                self.pg.close()


def wait_store(
    ctx: Context, reader: StoreReader, action: str, target: int, child: ChildProcess, label: str, poll_s: float
) -> tuple[float | None, float]:
    """Poll the store until it holds ``target`` (product, action) events: (first increase, done), monotonic."""
    start_count = reader.count(action)
    watch = Watch(ctx.options.stall, seen=start_count)
    first = None
    while True:
        count = reader.count(action)
        now = time.monotonic()
        if count > start_count and first is None:
            first = now
        if count >= target:
            return first, now
        if watch.stalled(count, now):
            raise BenchError(
                f"({label}) capture stalled: {count:,} of {target:,} {action} events in the store, none new in the"
                f" last {ctx.options.stall:g} s; capture log: {child.log_tail()}"
            )
        gone = child.exited()
        if gone is not None:
            raise BenchError(f"({label}) {gone}")
        if watch.report_due(now):
            log(f"({label}) {count:,} of {target:,} {action} events in the store")
        ctx.deadline.check(f"({label}) waiting for the store ({count:,} of {target:,} events)")
        time.sleep(poll_s)


def run(ctx: Context, source: str) -> dict[str, Any]:
    """(a) and (r) for one source."""
    rows = ctx.options.rows
    label = f"{source} a"
    slot = f"wm_bench_{uuid.uuid4().hex[:10]}"
    app = new_app(ctx, source, "a")
    raw = RawRead(ctx, source, app, slot, label)
    child: ChildProcess | None = None
    reader: StoreReader | None = None
    try:
        log(f"({label}) filling {TABLE} with {rows:,} rows")
        app.create(rows)
        store_url = new_store(ctx, "a-" + source)
        add_configuration(ctx, store_url, "update", DEAD_ENDPOINT)
        set_up_capture(ctx, source, app, slot, store_url, label)
        raw.before_capture()
        command = capture_command(ctx.exe, source, app.url, slot)
        child = ChildProcess("capture", command, ctx.store_env(store_url), ctx.workdir / f"capture-a-{source}.log")
        ctx.res.processes.append(child)
        child.start()
        reader = StoreReader(store_url)
        # Warm-up: one change, recorded, says the capture has claimed its source and runs. (A row-based binlog
        # logs no row an UPDATE leaves as it was: for MySQL the warm-up changes its row.)
        warm_up = "price + 1" if isinstance(app, MysqlApp) else "price"
        app.transaction(f"UPDATE {TABLE} SET price = {warm_up} WHERE id = 1")
        wait_store(ctx, reader, "update", 1, child, label + " warm-up", 0.02)
        raw.before_update()
        base = reader.count("update")
        backends = capture_backends(app)
        server_start = cpu_sum(backends)
        log(f"({label}) UPDATE of {rows:,} rows, capture running")
        started = time.monotonic()
        committed = app.transaction(f"UPDATE {TABLE} SET price = price + 1")
        # CPU from the commit on: before it, nothing of the UPDATE can be read (but a walsender decodes the WAL
        # as it is written, counted apart)
        cpu_before, server_before = cpu_seconds(child.pid), cpu_sum(backends)
        log(f"({label}) committed after {committed - started:.2f} s; waiting for the store")
        first, done = wait_store(ctx, reader, "update", base + rows, child, label, STORE_POLL_S)
        cpu_after, server_after = cpu_seconds(child.pid), cpu_sum(backends)
        final = reader.count("update") - base
        elapsed = done - committed
        result: dict[str, Any] = {
            "rows": rows,
            "update_s": committed - started,
            "recorded": final,
            "captured_s": elapsed,
            "captured_per_s": rows / elapsed,
            "first_after_s": None if first is None else first - committed,
            "capture_cpu_s": None if cpu_before is None or cpu_after is None else cpu_after - cpu_before,
            "server_cpu_s": None if server_before is None or server_after is None else server_after - server_before,
            "server_cpu_during_update_s": None
            if server_start is None or server_before is None
            else server_before - server_start,
            "server_cpu_what": "the whole server process" if isinstance(app, MysqlApp) else "its server backends",
        }
        child.stop()
        problems = child.problems()
        if problems:
            log(f"({label}) {len(problems)} warning/error line(s) in the capture's log; the first: {problems[0]}")
        result["log_problems"] = problems[:10]
        result.update(raw.read(rows))  # (r) the bare read, with the capture stopped
        result["ratio"] = result["captured_per_s"] / result["raw_per_s"] if result.get("raw_per_s") else None
        return result
    finally:
        if child is not None:
            child.stop()
        if reader is not None:
            reader.close()
        app.close()
        raw.close()
