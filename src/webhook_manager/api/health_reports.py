"""``/v1/endpoint-health`` and ``/v1/webhook-stats`` (extensions): how the client's deliveries went lately, as a
dashboard shows it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from webhook_manager.api import schemas
from webhook_manager.api.deps import ClockDep, SessionDep, StoreDep
from webhook_manager.api.params import Minutes, check_minutes
from webhook_manager.api.responses import JSONResponse
from webhook_manager.domain.model import EndpointReport
from webhook_manager.domain.timefmt import rfc3339_ms

router = APIRouter(prefix="/v1", tags=["webhook"])

MINUTE_MS = 60_000


@router.get(
    "/endpoint-health",
    summary="How the client's endpoints answered in the last minutes (extension)",
    operation_id="getEndpointHealth",
    responses=schemas.answers(list[schemas.EndpointHealth], 400, 401, 503),
)
async def endpoint_health(
    session: SessionDep, store: StoreDep, clock: ClockDep, minutes: Minutes = None
) -> JSONResponse:
    """The tries of the client's webhooks that started in the last ``minutes`` minutes, per endpoint: only the
    endpoints tried then, sorted by endpoint."""
    since_ms = clock.now_ms() - check_minutes(minutes) * MINUTE_MS
    reports = await store.endpoint_report(since_ms, client_code=session.client_code)
    return JSONResponse([endpoint_health_json(r) for r in reports])


def endpoint_health_json(report: EndpointReport) -> dict[str, Any]:
    """One endpoint's report with exactly the keys of :class:`schemas.EndpointHealth`."""
    failed_at = report.last_failure_at_ms
    return {
        "endpoint": report.endpoint,
        "tries": report.tries,
        "successes": report.successes,
        "successRate": report.success_rate,
        "p50Ms": report.p50_ms,
        "p99Ms": report.p99_ms,
        "lastFailureAt": None if failed_at is None else rfc3339_ms(failed_at),
        "lastFailure": None if failed_at is None else report.last_failure,
    }


@router.get(
    "/webhook-stats",
    summary="The client's webhooks sent and failed per minute (extension)",
    operation_id="getWebhookStats",
    responses=schemas.answers(schemas.WebhookStats, 400, 401, 503),
)
async def webhook_stats(session: SessionDep, store: StoreDep, clock: ClockDep, minutes: Minutes = None) -> JSONResponse:
    """The client's webhooks that ended ``sent`` or ``failed`` in each of the last ``minutes`` whole minutes, by
    when their last try ended (or their configuration went), oldest first and the current minute last."""
    now_ms = clock.now_ms()
    first_ms = (now_ms // MINUTE_MS - check_minutes(minutes) + 1) * MINUTE_MS
    counts = await store.webhooks_per_minute(session.client_code, first_ms, now_ms)
    return JSONResponse(
        {
            "from": rfc3339_ms(first_ms),
            "minutes": [{"at": rfc3339_ms(c.at_ms), "sent": c.sent, "failed": c.failed} for c in counts],
        }
    )
