"""``/v1/event``: recording events (extension) and the list of recorded ones (Swagger v1.18.3)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from webhook_manager.api import schemas
from webhook_manager.api.deps import ClockDep, NotifierDep, SessionDep, SettingsDep, StoreDep
from webhook_manager.api.params import check_limit, optional_time, required
from webhook_manager.api.responses import JSONResponse, read_json
from webhook_manager.domain.timefmt import TimestampFormatter, from_wall_clock, rfc3339_ms
from webhook_manager.ingest.event_input import TimestampReader, items_json, parse_event_batch
from webhook_manager.ingest.fields import check_action, check_table

router = APIRouter(prefix="/v1/event", tags=["webhook"])

MAX_BODY = 16 * 1024 * 1024


@router.post(
    "",
    summary="Record events (extension)",
    operation_id="recordEvents",
    responses={200: {"model": schemas.RecordedEvents}, 413: {"model": schemas.OutputError}, **schemas.ERRORS},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schemas.InputEvents.model_json_schema()}},
        }
    },
)
async def record_events(
    request: Request,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    clock: ClockDep,
    notifier: NotifierDep,
) -> JSONResponse:
    """Record 1 to 10 000 events of one table and action; answered once they are durably stored.

    Events that match no enabled configuration are dropped, as in Erply (``recorded`` counts the kept ones).
    """
    body = await read_json(request, MAX_BODY)
    now = clock.now_ms()
    batch = parse_event_batch(
        body, reader=TimestampReader(settings.timezone), now=TimestampFormatter(settings.timezone), now_ms=now
    )
    items = items_json(batch.items)
    count = len(batch.items)
    recorded = await store.record_events(session.client_code, batch.table, batch.action.value, items, count, now)
    if recorded:
        notifier.events_recorded()
    return JSONResponse({"received": count, "recorded": count if recorded else 0})


@router.get(
    "",
    summary="Get recorded events",
    operation_id="getEvents",
    responses={200: {"model": list[schemas.OutputEvent]}, **schemas.ERRORS},
)
async def list_events(
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    table: Annotated[str | None, Query(description="Name of the table for the event")] = None,
    action: Annotated[str | None, Query(description="Name of the action for the event")] = None,
    limit: Annotated[str | None, Query(description="Default 20, at most 100")] = None,
) -> JSONResponse:
    """Recently recorded events of one table and action, newest first."""
    table = check_table(required(table, "table"))
    action_value = check_action(required(action, "action")).value
    events = await store.list_events(session.client_code, table, action_value, check_limit(limit))
    return JSONResponse(
        [
            {
                "id": e.id,
                "table": e.table,
                "action": e.action,
                "rowID": e.row_id,
                "status": e.status.value,
                "eventDate": rfc3339_ms(from_wall_clock(e.timestamp, settings.timezone)),
                "createdAt": rfc3339_ms(e.created_at_ms),
                "processedAt": optional_time(e.processed_at_ms),
            }
            for e in events
        ]
    )
