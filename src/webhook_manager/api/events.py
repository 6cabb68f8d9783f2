"""``/v1/event``: recording events (extension) and the list of recorded ones (Swagger v1.18.3)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from webhook_manager.api import schemas
from webhook_manager.api.deps import ClockDep, MetricsDep, NotifierDep, SessionDep, SettingsDep, StoreDep
from webhook_manager.api.params import ActionQuery, Limit, TableQuery, check_limit, optional_time
from webhook_manager.api.responses import JSONResponse, decode_json, read_body
from webhook_manager.domain.errors import Conflict
from webhook_manager.domain.model import IDEMPOTENCY_KEY_KEPT_MS
from webhook_manager.domain.timefmt import TimestampFormatter, from_wall_clock, rfc3339_ms
from webhook_manager.ingest.event_input import TimestampReader, items_json, parse_event_batch
from webhook_manager.ingest.fields import check_action, check_table
from webhook_manager.ingest.idempotency import HEADER, body_hash, check_idempotency_key

router = APIRouter(prefix="/v1/event", tags=["webhook"])

MAX_BODY = 16 * 1024 * 1024


@router.post(
    "",
    summary="Record events (extension)",
    operation_id="recordEvents",
    responses=schemas.answers(
        schemas.RecordedEvents,
        400,
        401,
        409,
        413,
        503,
        links={
            "getEvents": schemas.link("getEvents", table="$request.body#/table", action="$request.body#/action"),
            "getWebhooks": schemas.link("getWebhooks", table="$request.body#/table", action="$request.body#/action"),
        },
        why={409: f"The {HEADER} was used in the last 24 hours with another body"},
    ),
    openapi_extra={
        **schemas.request_body(schemas.InputEvents, "application/json"),
        "parameters": [schemas.IDEMPOTENCY_KEY],
    },
)
async def record_events(
    request: Request,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    clock: ClockDep,
    notifier: NotifierDep,
    metrics: MetricsDep,
) -> JSONResponse:
    """Record 1 to 10 000 events of one table and action; answered once they are durably stored.

    Events that match no enabled configuration are dropped, as in Erply (``recorded`` counts the kept ones).
    With an ``Idempotency-Key``, a repeat of the call (the same key and body) answers as the first one did and
    stores nothing.
    """
    key = check_idempotency_key(request.headers.getlist(HEADER))
    raw = await read_body(request, MAX_BODY)
    body = decode_json(raw)
    now = clock.now_ms()
    batch = parse_event_batch(
        body, reader=TimestampReader(settings.timezone), now=TimestampFormatter(settings.timezone), now_ms=now
    )
    items = items_json(batch.items)
    count = len(batch.items)
    client, table, action = session.client_code, batch.table, batch.action.value
    # for the webhook-type catalogue: a store notes a name once, then this is a set lookup
    await store.note_event_name(client, table, action, now)
    if key is None:
        received, recorded = count, count if await store.record_events(client, table, action, items, count, now) else 0
        stored = True
    else:
        since = now - IDEMPOTENCY_KEY_KEPT_MS  # a key first used before then counts as unused
        done = await store.record_events_once(
            client, key, body_hash(raw), table, action, items, count, now, expired_before_ms=since
        )
        if not done.same_body:
            raise Conflict(f"{HEADER}: was used in the last 24 hours with another body; send new events with a new key")
        received, recorded, stored = done.received, done.recorded, done.first  # a repeat: the first call's answer
    if stored:
        metrics.events_in("api", received, recorded)
        if recorded:
            notifier.events_recorded()
    return JSONResponse({"received": received, "recorded": recorded})


@router.get(
    "",
    summary="Get recorded events",
    operation_id="getEvents",
    responses=schemas.answers(list[schemas.OutputEvent], 400, 401, 503),
)
async def list_events(
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    table: TableQuery,
    action: ActionQuery,
    limit: Limit = None,
) -> JSONResponse:
    """Recently recorded events of one table and action, newest first."""
    table = check_table(table)
    action_value = check_action(action).value
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
