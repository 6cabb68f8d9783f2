"""(a) end-to-end events/s: ``--events`` events recorded with POST /v1/event in calls of ``--call-size`` by
``--clients`` concurrent clients, from the first POST until the receiver has the last event, in full batches
(BATCH_MAX_EVENTS=100); also the recording rate alone. When (d) would be the same run (same size and settings),
its peak RSS is taken from this run."""

from __future__ import annotations

from bench.scenarios.pipeline import backlog
from bench.scenarios.pipeline.context import Context
from bench.scenarios.pipeline.measure import ceiling_of, measured_part, print_headline


async def run(ctx: Context) -> None:
    result = await measured_part(ctx, "a", {"WEBHOOK_MANAGER_BATCH_MAX_EVENTS": "100"}, ctx.options.events)
    print_headline(
        f"(a) END-TO-END: {result['recorded']:,} events in {result['e2e_s']:.2f} s = {result['events_per_s']:,.0f}"
        " events/s",
        result["events_per_s"],
        ctx.targets["a_events_per_s"],
        ceiling_of(ctx, 100, "events_per_s"),
    )
    if ctx.options.backlog_in_a:
        backlog.report(ctx, result, "measured in run (a): the same backlog, recorded as fast as possible")
