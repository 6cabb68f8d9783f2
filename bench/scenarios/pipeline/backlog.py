"""(d) the service's peak RSS while draining a backlog of ``--backlog-events`` events recorded as fast as possible,
default settings: the kernel's VmHWM since login (summed over the service's processes), or the largest sample of
the summed VmRSS when the peak could not be reset. Measured in run (a) instead when that is the same run."""

from __future__ import annotations

from typing import Any

from bench.harness.report import out, verdict
from bench.scenarios.pipeline.context import Context
from bench.scenarios.pipeline.measure import measured_run


def report(ctx: Context, result: dict[str, Any], how: str) -> None:
    """(d)'s figures from a measured run (its own, or (a)'s), into ``ctx.results["d"]`` and the output."""
    rss = result["rss"]
    ctx.results["d"] = {
        "events": result["recorded"],
        "how": how,
        "e2e_s": result["e2e_s"],
        "events_per_s": result["events_per_s"],
        **rss,
    }
    target = ctx.targets["d_peak_rss_mb"]
    hwm_by_process: dict[str, float | None] = rss["vmhwm_by_process_mb"]
    summed = each = ""
    if len(hwm_by_process) > 1:
        summed = f" summed over {rss['service_processes']}"
        each = " (" + ", ".join(f"{name} {mb or 0:,.1f}" for name, mb in hwm_by_process.items()) + ": each one's peak)"
    out(
        f"(d) PEAK RSS draining {result['recorded']:,} events: {rss['peak_rss_mb']:,.1f} MB{summed}"
        f"   target <= {target:.0f} MB  {verdict(rss['peak_rss_mb'] <= target)}   [VmHWM {rss['vmhwm_mb']:,.1f} MB"
        + each
        + (" since login" if rss["vmhwm_reset_after_login"] else " since start (could not reset it; not used)")
        + f", max sampled VmRSS"
        f" {rss['sampled_peak_rss_mb']:,.1f} MB over {rss['samples']:,} samples, {rss['processes']} process(es);"
        f" {how}]"
    )


async def run(ctx: Context) -> None:
    if ctx.options.backlog_in_a:
        return  # reported by (a)
    result = await measured_run(ctx, "d", {}, ctx.options.backlog_events)
    report(ctx, result, "a run of its own, default settings")
