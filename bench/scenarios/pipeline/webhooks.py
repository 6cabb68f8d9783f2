"""(b) webhooks/s with one event per webhook (BATCH_MAX_EVENTS=1): ``--webhook-events`` events recorded as fast
as possible, until the receiver has them all; shown as a ratio to the 1-event raw ceiling (e)."""

from __future__ import annotations

from bench.scenarios.pipeline.context import Context
from bench.scenarios.pipeline.measure import ceiling_of, measured_part, print_headline


async def run(ctx: Context) -> None:
    result = await measured_part(ctx, "b", {"WEBHOOK_MANAGER_BATCH_MAX_EVENTS": "1"}, ctx.options.webhook_events)
    print_headline(
        f"(b) WEBHOOKS/S (1 event each): {result['webhooks']:,} webhooks in {result['e2e_s']:.2f} s ="
        f" {result['webhooks_per_s']:,.0f} webhooks/s",
        result["webhooks_per_s"],
        ctx.targets["b_webhooks_per_s"],
        ceiling_of(ctx, 1, "requests_per_s"),
    )
