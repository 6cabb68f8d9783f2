"""The measurement of (a), (b) and (d): record N events as fast as possible, wait until the receiver has them all;
the rates, webhooks, duplicates, service CPU and peak RSS of that run, and the lines that show them."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

from bench.harness.limits import BenchError
from bench.harness.report import log, out, verdict
from bench.scenarios.pipeline.context import Context, Running, record_all, running_service, wait_for_events


async def throughput(ctx: Context, running: Running, total: int, label: str) -> dict[str, Any]:
    """Record ``total`` events as fast as possible; time to the API's last answer and to the last receipt."""
    bodies = ctx.event_bodies(total)
    await ctx.receiver.reset()
    cpu_before = running.service.cpu_by_process()
    log(f"({label}) recording {total:,} events in {len(bodies):,} calls with {ctx.options.clients} clients")
    t0 = time.time()
    received, recorded = await record_all(ctx, running, bodies, label)
    recorded_at = time.time()
    if recorded == 0:
        raise BenchError(
            f"({label}) POST /v1/event recorded none of {received:,} events: the configuration did not match"
        )
    log(f"({label}) recorded {recorded:,} events in {recorded_at - t0:.2f} s; waiting for webhooks")
    stats = await wait_for_events(ctx, running, recorded, label)
    cpu_after = running.service.cpu_by_process()
    await asyncio.sleep(0.2)  # anything beyond the expected count (duplicates) that is still on its way
    final = await ctx.receiver.stats()
    last = stats["last"] or time.time()
    e2e_s = max(last - t0, 1e-9)
    record_s = max(recorded_at - t0, 1e-9)
    cpu: dict[str, float | None] = {
        name: None if before is None or cpu_after.get(name) is None else cast(float, cpu_after[name]) - before
        for name, before in cpu_before.items()
    }
    known = [seconds for seconds in cpu.values() if seconds is not None]
    return {
        "events": total,
        "received": received,
        "recorded": recorded,
        "record_s": record_s,
        "record_events_per_s": recorded / record_s,
        "e2e_s": e2e_s,
        "events_per_s": stats["events"] / e2e_s,
        "webhooks": stats["webhooks"],
        "webhooks_per_s": stats["webhooks"] / e2e_s,
        "events_per_webhook": stats["events"] / stats["webhooks"] if stats["webhooks"] else None,
        "events_received": final["events"],
        "duplicate_webhooks": final["duplicates"],
        "first_webhook_after_s": (stats["first"] - t0) if stats["first"] else None,
        # summed over all of the service's processes (api + workers); None if one of them could not be read
        "service_cpu_s": sum(known) if len(known) == len(cpu) else None,
        "service_cpu_by_process_s": cpu,
    }


def rss_result(running: Running) -> dict[str, Any]:
    """The peak RSS of the run's service (read once the part has stopped sampling)."""
    sampler = running.sampler
    return {
        "peak_rss_mb": sampler.peak_mb(),
        "vmhwm_mb": (sampler.hwm_kb or 0) / 1024.0,
        "sampled_peak_rss_mb": sampler.peak_sampled_kb / 1024.0,
        "samples": sampler.samples,
        "processes": sampler.processes,
        "vmhwm_reset_after_login": sampler.hwm_reset,
        # peak_rss_mb, vmhwm_mb and sampled_peak_rss_mb are sums over these processes (and their children)
        "service_processes": running.service.layout,
        "vmhwm_by_process_mb": {
            p.name: None if kb is None else kb / 1024.0
            for p, kb in zip(running.service.processes, sampler.hwm_by_pid, strict=False)
        },
    }


async def measured_run(ctx: Context, label: str, settings: dict[str, str], total: int) -> dict[str, Any]:
    """A fresh service with ``settings``, :func:`throughput` of ``total`` events on it, and its peak RSS."""
    async with running_service(ctx, label, settings) as running:
        result = await throughput(ctx, running, total, label)
    result["rss"] = rss_result(running)
    return result


def ceiling_of(ctx: Context, events: int, key: str) -> float | None:
    """A figure of the raw ceiling (e) with ``events``-event bodies, when (e) ran."""
    ceiling = ctx.results.get("e", {}).get(f"body_{events}")
    return None if ceiling is None else float(ceiling[key])


def ratio(value: float, ceiling: float | None) -> str:
    return "" if not ceiling else f"  ({value / ceiling:.2f} of the raw ceiling)"


def print_throughput(ctx: Context, label: str, result: dict[str, Any]) -> None:
    ceiling_events = ceiling_of(ctx, 100, "events_per_s")
    if result["recorded"] != result["received"]:
        out(f"({label}) warning: {result['recorded']:,} of {result['received']:,} events recorded")
    if result["duplicate_webhooks"] or result["events_received"] != result["recorded"]:
        out(
            f"({label}) warning: {result['events_received']:,} events received for {result['recorded']:,} recorded,"
            f" {result['duplicate_webhooks']:,} webhooks with an id seen before"
        )
    out(
        f"({label}) recording alone: {result['recorded']:,} events in {result['record_s']:.2f} s ="
        f" {result['record_events_per_s']:,.0f} events/s accepted by POST /v1/event"
        + ratio(result["record_events_per_s"], ceiling_events)
    )
    cpu = result["service_cpu_s"]
    by_process: dict[str, float | None] = result["service_cpu_by_process_s"]
    summed = ""
    if len(by_process) > 1:
        each = ", ".join(f"{name} {seconds or 0:.1f}" for name, seconds in by_process.items())
        summed = f" (summed over {ctx.layout}: {each})"
    out(
        f"({label}) webhooks: {result['webhooks']:,} ({result['events_per_webhook'] or 0:.1f} events each),"
        f" first after {result['first_webhook_after_s'] or 0:.3f} s"
        + (f", service CPU {cpu:.1f} s{summed} over {result['e2e_s']:.1f} s wall" if cpu is not None else "")
    )


async def measured_part(ctx: Context, label: str, settings: dict[str, str], total: int) -> dict[str, Any]:
    """:func:`measured_run` as the figures of part ``label``: kept in ``ctx.results`` and printed, but for the
    headline, which is the part's own."""
    result = await measured_run(ctx, label, settings, total)
    ctx.results[label] = result
    print_throughput(ctx, label, result)
    return result


def print_headline(figure: str, value: float, target: float, ceiling: float | None) -> None:
    """A part's headline: its figure, its target ``>=`` and verdict, and its ratio to the raw ceiling."""
    out(f"{figure}   target >= {target:,.0f}  {verdict(value >= target)}" + ratio(value, ceiling))
