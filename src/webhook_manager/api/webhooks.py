"""``/v1/webhook``: the delivery log (Swagger v1.18.3; its ``status`` filter and paging are extensions), one
webhook's detail and resend, and the bulk resend of failed ones (extensions)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException

from webhook_manager.api import schemas
from webhook_manager.api.deps import ClockDep, NotifierDep, SessionDep, SettingsDep, StoreDep
from webhook_manager.api.params import (
    ActionFilter,
    Before,
    IdPath,
    Limit,
    StatusFilter,
    TableFilter,
    check_before,
    check_limit,
    check_status,
    checked_id,
    optional_time,
)
from webhook_manager.api.responses import JSONResponse, read_json
from webhook_manager.domain.errors import Conflict, InvalidInput, NotFound
from webhook_manager.domain.model import WebhookRecord
from webhook_manager.domain.timefmt import rfc3339_ms
from webhook_manager.ingest.fields import check_action, check_table
from webhook_manager.ingest.resend_filter import parse_resend_filter

router = APIRouter(prefix="/v1/webhook", tags=["webhook"])

MAX_FILTER_BODY = 16 * 1024
BULK_RESEND = "resend"


def webhook_json(w: WebhookRecord) -> dict[str, Any]:
    """A webhook with exactly the keys of Erply's OutputWebhook."""
    return {
        "id": w.id,
        "table": w.table,
        "action": w.action,
        "endpoint": w.endpoint,
        "eventCount": w.event_count,
        "status": w.status.value,
        "tries": w.tries,
        "lastFailure": w.last_failure,
        "createdAt": rfc3339_ms(w.created_at_ms),
        "processedAt": optional_time(w.processed_at_ms),
    }


@router.get(
    "",
    summary="Get recently sent webhooks",
    operation_id="getWebhooks",
    responses=schemas.answers(
        list[schemas.OutputWebhook],
        400,
        401,
        503,
        links={
            "getFirst": schemas.link("getWebhook", id="$response.body#/0/id"),
            "resendFirst": schemas.link("resendWebhook", id="$response.body#/0/id"),
        },
    ),
)
async def list_webhooks(
    session: SessionDep,
    store: StoreDep,
    table: TableFilter = None,
    action: ActionFilter = None,
    limit: Limit = None,
    status: StatusFilter = None,
    before: Before = None,
) -> JSONResponse:
    """The client's webhooks, newest first; ``status`` and ``before`` (paging) are extensions."""
    table = None if not table else check_table(table)
    action_value = None if not action else check_action(action).value
    count, status, before = check_limit(limit), check_status(status), check_before(before)
    try:
        webhooks = await store.list_webhooks(
            session.client_code, table, action_value, count, status=status, before=before
        )
    except NotFound:  # another client's webhook is no more found than one that does not exist
        raise InvalidInput("before", "no such webhook") from None
    return JSONResponse([webhook_json(w) for w in webhooks])


@router.get(
    "/{id}",
    summary="One webhook with its body and tries (extension)",
    operation_id="getWebhook",
    responses=schemas.answers(
        schemas.WebhookDetail,
        400,
        401,
        404,
        503,
        links={"resend": schemas.link("resendWebhook", id="$response.body#/id")},
    ),
)
async def get_webhook(id: IdPath, session: SessionDep, store: StoreDep) -> JSONResponse:
    """The webhook as listed, plus ``payload`` (the exact body sent) and ``attempts``."""
    if id == BULK_RESEND:  # the path of POST /v1/webhook/resend, not an id: a GET of it is a wrong method
        raise HTTPException(405)
    found = await store.get_webhook(session.client_code, checked_id(id))
    if found is None:
        raise NotFound(f"no webhook with id {id}")
    record, payload, attempts = found
    return JSONResponse(
        {
            **webhook_json(record),
            "payload": payload.decode("utf-8"),
            "attempts": [
                {"at": rfc3339_ms(a.at_ms), "durationMs": a.duration_ms, "httpStatus": a.http_status, "error": a.error}
                for a in attempts
            ],
        }
    )


@router.post(
    "/{id}/resend",
    summary="Give a failed webhook a new round of tries (extension)",
    operation_id="resendWebhook",
    responses=schemas.answers(
        schemas.OutputWebhook,
        400,
        401,
        404,
        409,
        503,
        links={"get": schemas.link("getWebhook", id="$response.body#/id")},
    ),
)
async def resend_webhook(
    id: IdPath, session: SessionDep, store: StoreDep, clock: ClockDep, notifier: NotifierDep
) -> JSONResponse:
    """A ``failed`` webhook is tried again, same id and body; other statuses answer 409."""
    before = await store.resend_webhook(session.client_code, checked_id(id), clock.now_ms())
    if before is None:
        raise NotFound(f"no webhook with id {id}")
    if before != "failed":
        raise Conflict(f"webhook {id} is {before}; only a failed webhook can be resent")
    notifier.webhooks_due()
    found = await store.get_webhook(session.client_code, id)
    assert found is not None
    return JSONResponse(webhook_json(found[0]))


@router.post(
    f"/{BULK_RESEND}",
    summary="Give the client's failed webhooks a new round of tries, paced (extension)",
    operation_id="resendWebhooks",
    responses=schemas.answers(schemas.ResentWebhooks, 400, 401, 413, 503),
    openapi_extra=schemas.request_body(schemas.InputResendFilter, "application/json"),
)
async def resend_webhooks(
    request: Request,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    clock: ClockDep,
    notifier: NotifierDep,
) -> JSONResponse:
    """Every ``failed`` webhook of the client that the filters match is tried again, same ids and bodies, oldest
    first at ``resend_rate`` a second from now, so webhooks formed meanwhile go between them."""
    given = parse_resend_filter(await read_json(request, MAX_FILTER_BODY))
    resent = await store.resend_webhooks(
        session.client_code,
        table=given.table,
        action=given.action,
        configuration_id=given.configuration_id,
        since_ms=given.since_ms,
        until_ms=given.until_ms,
        now_ms=clock.now_ms(),
        rate_per_s=settings.resend_rate,
    )
    if resent:
        notifier.webhooks_due()
    return JSONResponse({"resent": resent})
