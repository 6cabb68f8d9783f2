"""(c) p50/p99 latency from record to receipt at a steady ``--latency-rate`` events/s (calls of ``--latency-call``
events, each call's items carrying ``data: {"t": <time.time() when sent>}``, which the receiver subtracts from its
receipt time), for ``--latency-seconds``, default settings (linger 20 ms); also the POST /v1/event call times."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from bench import receiver
from bench.harness.limits import BenchError
from bench.harness.report import log, out, verdict
from bench.harness.service import TABLE
from bench.scenarios.pipeline.context import ACTION, TIMESTAMP, Context, Running, running_service, wait_for_events
from bench.scenarios.pipeline.measure import rss_result


async def send_steadily(ctx: Context, running: Running, calls: int, call_ms: list[float]) -> tuple[int, int, float]:
    """``calls`` POST /v1/event calls, one every ``latency_call / latency_rate`` seconds (at most 256 in flight);
    (received, recorded, seconds from the first call to the last answer); each call's time in ``call_ms``."""
    opts = ctx.options
    per_call = opts.latency_call
    interval = per_call / opts.latency_rate
    loop = asyncio.get_running_loop()
    in_flight = asyncio.Semaphore(256)
    totals = [0, 0]

    async def post(body: bytes) -> None:
        try:
            started = time.perf_counter()
            received, recorded = await running.api.post_events(body, per_call)
            call_ms.append((time.perf_counter() - started) * 1000.0)
            totals[0] += received
            totals[1] += recorded
        finally:
            in_flight.release()

    log(f"(c) sending {calls * per_call:,} events at {opts.latency_rate:,}/s in calls of {per_call}")
    pending: set[asyncio.Task[None]] = set()
    failures: list[BaseException] = []

    def finished(task: asyncio.Task[None]) -> None:
        pending.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:
            failures.append(error)

    start = loop.time() + 0.05
    wall_start = time.time()
    try:
        for k in range(calls):
            delay = start + k * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if failures:
                raise failures[0]
            ctx.deadline.check("(c) sending at a steady rate")
            await in_flight.acquire()
            sent_at = time.time()
            items = [
                {"rowId": k * per_call + i + 1, "timestamp": TIMESTAMP, "data": {"t": sent_at}} for i in range(per_call)
            ]
            task = asyncio.create_task(post(orjson.dumps({"table": TABLE, "action": ACTION, "items": items})))
            pending.add(task)
            task.add_done_callback(finished)
        while pending and not failures:
            ctx.deadline.check("(c) waiting for the last calls")
            await asyncio.wait(set(pending), timeout=1.0)
        if failures:
            raise failures[0]
    finally:
        for task in list(pending):
            task.cancel()
    return totals[0], totals[1], time.time() - wall_start


async def run(ctx: Context) -> None:
    opts = ctx.options
    calls = max(1, round(opts.latency_seconds * opts.latency_rate / opts.latency_call))
    call_ms: list[float] = []
    async with running_service(ctx, "c", {}) as running:
        await ctx.receiver.reset(latency=True)
        received, recorded, send_s = await send_steadily(ctx, running, calls, call_ms)
        if recorded == 0:
            raise BenchError("(c) POST /v1/event recorded none of the events: the configuration did not match")
        stats = await wait_for_events(ctx, running, recorded, "c")
    latency = stats["latency"]
    call_ms.sort()
    result: dict[str, Any] = {
        "events": recorded,
        "send_s": send_s,
        "achieved_rate": received / send_s,
        "webhooks": stats["webhooks"],
        "events_per_webhook": stats["events"] / stats["webhooks"] if stats["webhooks"] else None,
        "p50_ms": latency["p50"],
        "p90_ms": latency["p90"],
        "p99_ms": latency["p99"],
        "max_ms": latency["max"],
        "mean_ms": latency["mean"],
        "samples": latency["count"],
        "call_p50_ms": receiver.percentile(call_ms, 50),
        "call_p99_ms": receiver.percentile(call_ms, 99),
        "rss": rss_result(running),
    }
    ctx.results["c"] = result
    p50, p99 = result["p50_ms"], result["p99_ms"]
    targets = ctx.targets
    out(
        f"(c) steady load: {result['events']:,} events at {result['achieved_rate']:,.0f}/s"
        f" (asked {opts.latency_rate:,}/s) in {result['webhooks']:,} webhooks"
        f" ({result['events_per_webhook'] or 0:.1f} events each); POST /v1/event p50"
        f" {result['call_p50_ms'] or 0:.1f} ms, p99 {result['call_p99_ms'] or 0:.1f} ms"
    )
    out(
        f"(c) LATENCY record→receipt: p50 {p50 or 0:.1f} ms (target <= {targets['c_p50_ms']:.0f}"
        f" {verdict(None if p50 is None else p50 <= targets['c_p50_ms'])}), p99 {p99 or 0:.1f} ms (target <="
        f" {targets['c_p99_ms']:.0f} {verdict(None if p99 is None else p99 <= targets['c_p99_ms'])}),"
        f" p90 {result['p90_ms'] or 0:.1f} ms, max {result['max_ms'] or 0:.1f} ms, {result['samples']:,} samples"
    )
