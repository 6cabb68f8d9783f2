"""``/metrics``: the process's Prometheus metrics (docs/metrics.md), in Prometheus' text format.

Not in the OpenAPI document: it is for Prometheus, not for Erply's clients, and takes no session (it names no
client, secret or URL; keep the port where only the scraper reaches it).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from webhook_manager.api.deps import ClockDep, MetricsDep, StoreDep

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(observed: MetricsDep, store: StoreDep, clock: ClockDep) -> Response:
    """The metrics, store-level gauges read from the store at most every ``metrics_refresh_s``."""
    return Response(await observed.exposition(store, clock.now_ms), media_type=CONTENT_TYPE_LATEST)
