"""(c) commit → receipt latency: ``webhook-manager serve --config FILE`` with a ``[[capture]]`` section for the
source (data = "none"), a configuration for (product, insert) pointing to the bench's receiver (noting the
receipt time of every rowId), and an application writer inserting ``--rate`` rows/s (``--per-transaction`` rows
per transaction) for ``--seconds``; commit→receipt per row is the receiver's ``time.time()`` at receipt minus the
writer's ``time.time()`` after the commit returned."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from bench import receiver
from bench.harness.limits import BenchError, Watch
from bench.harness.report import log
from bench.harness.service import HOST, Service, capture_section, wait_ready
from bench.scenarios.capture.apps import App
from bench.scenarios.capture.context import Context, add_configuration, new_app, new_store, set_up_capture

WARMUP_ROW_ID = 999_999_999  # the row inserted first, to know the whole path runs before the clock starts


def wait_receiver(
    ctx: Context, service: Service, expected: set[int], label: str
) -> tuple[list[int], list[float], bool]:
    """Poll the receiver until it has every expected rowId or nothing new arrives for --stall; (ids, times,
    complete)."""
    watch = Watch(ctx.options.stall)
    while True:
        ids, times = receiver.get_rows(ctx.receiver_port)
        arrived = len(expected.intersection(ids))
        if arrived >= len(expected):
            return ids, times, True
        if watch.stalled(arrived, time.monotonic()):
            log(f"({label}) only {arrived:,} of {len(expected):,} rows arrived; none new in {ctx.options.stall:g} s")
            return ids, times, False
        gone = service.exited()
        if gone is not None:
            raise BenchError(f"({label}) {gone}")
        ctx.deadline.check(f"({label}) waiting for webhooks ({arrived:,} of {len(expected):,} rows)")
        time.sleep(0.1)


def write_steadily(
    ctx: Context, app: App, service: Service, label: str, commit_ms: list[float]
) -> tuple[dict[int, float], float]:
    """Insert rows at ``--rate``, ``--per-transaction`` per transaction, for ``--seconds``: (the commit time of
    each rowId, seconds spent writing); each commit's duration in ``commit_ms``."""
    opts = ctx.options
    per_tx = opts.per_transaction
    interval = per_tx / opts.rate
    transactions = max(1, round(opts.seconds * opts.rate / per_tx))
    committed: dict[int, float] = {}
    log(f"({label}) inserting {transactions * per_tx:,} rows at {opts.rate:,}/s, {per_tx} per transaction")
    start = time.monotonic() + 0.05
    wall_start = time.time()
    for k in range(transactions):
        delay = start + k * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if k % 100 == 0:
            ctx.deadline.check(f"({label}) writing")
            gone = service.exited()
            if gone is not None:
                raise BenchError(f"({label}) {gone}")
        ids = list(range(k * per_tx + 1, (k + 1) * per_tx + 1))
        before = time.time()
        at = app.insert(ids)
        commit_ms.append((at - before) * 1000.0)
        for row_id in ids:
            committed[row_id] = at
    return committed, time.time() - wall_start


def run(ctx: Context, source: str) -> dict[str, Any]:
    """(c) for one source."""
    label = f"{source} c"
    slot = f"wm_bench_{uuid.uuid4().hex[:10]}"
    app = new_app(ctx, source, "c")
    service: Service | None = None
    commit_ms: list[float] = []
    try:
        app.create(0)
        store_url = new_store(ctx, "c-" + source)
        add_configuration(ctx, store_url, "insert", f"http://{HOST}:{ctx.receiver_port}/hook")
        set_up_capture(ctx, source, app, slot, store_url, label)
        config = ctx.workdir / f"serve-{source}.toml"
        config.write_text(capture_section(source, app.url, slot))
        service = Service(label, ctx.exe, store_url, {}, ctx.workdir, args=("--config", str(config)))
        ctx.res.processes.extend(service.processes)
        log(f"({label}) starting serve with [[capture]] {source} on port {service.port}")
        service.start()
        asyncio.run(wait_ready(service, ctx.deadline))
        # Warm-up: one row through the whole path (capture claimed, batcher and dispatcher running).
        receiver.reset(ctx.receiver_port, latency=True)
        app.insert([WARMUP_ROW_ID])
        wait_receiver(ctx, service, {WARMUP_ROW_ID}, label + " warm-up")
        receiver.reset(ctx.receiver_port, latency=True)
        committed, write_s = write_steadily(ctx, app, service, label, commit_ms)
        ids_received, times, complete = wait_receiver(ctx, service, set(committed), label)
        service.stop()
        problems = service.processes[0].problems()
        if problems:
            log(f"({label}) {len(problems)} warning/error line(s) in serve's log; the first: {problems[0]}")
    finally:
        if service is not None:
            service.stop()
        app.close()
    first_receipt: dict[int, float] = {}
    duplicates = 0
    for row_id, at in zip(ids_received, times, strict=True):
        if row_id in first_receipt:
            duplicates += 1
        elif row_id in committed:
            first_receipt[row_id] = at
    latencies = sorted((at - committed[row_id]) * 1000.0 for row_id, at in first_receipt.items())
    commit_ms.sort()
    return {
        "rows": len(committed),
        "arrived": len(first_receipt),
        "complete": complete,
        "duplicates": duplicates,
        "write_s": write_s,
        "achieved_rate": len(committed) / write_s,
        "commit_p50_ms": receiver.percentile(commit_ms, 50),
        "commit_p99_ms": receiver.percentile(commit_ms, 99),
        "p50_ms": receiver.percentile(latencies, 50),
        "p90_ms": receiver.percentile(latencies, 90),
        "p99_ms": receiver.percentile(latencies, 99),
        "max_ms": latencies[-1] if latencies else None,
        "log_problems": problems[:10],
    }
