"""``/v1/webhook-type`` (extension): the client's webhook-type catalogue, what will actually fire for it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from webhook_manager.api import schemas
from webhook_manager.api.deps import SessionDep, StoreDep
from webhook_manager.api.responses import JSONResponse
from webhook_manager.domain.model import Action, WebhookTypes

router = APIRouter(prefix="/v1/webhook-type", tags=["webhook"])

CAPTURED_ACTIONS = [Action.INSERT.value, Action.UPDATE.value, Action.DELETE.value]
"""What every capture source makes of a captured table's changes (never ``confirm``)."""
_ACTION_ORDER = {action.value: index for index, action in enumerate(Action)}


@router.get(
    "",
    summary="What fires: captured tables and custom event names (extension)",
    operation_id="getWebhookTypes",
    responses=schemas.answers(schemas.WebhookTypes, 401, 503),
)
async def webhook_types(session: SessionDep, store: StoreDep) -> JSONResponse:
    """The tables the client's capture sources watch, with what their events carry, and the custom event names
    (table and action) the client has sent to ``POST /v1/event``. Configurations may name any table; these are
    the ones that fire."""
    return JSONResponse(webhook_types_json(await store.webhook_types(session.client_code)))


def webhook_types_json(types: WebhookTypes) -> dict[str, Any]:
    """The catalogue as answered: custom names grouped by table, actions in the order of :class:`Action`."""
    custom: dict[str, list[str]] = {}
    for table, action in types.custom:
        custom.setdefault(table, []).append(action)
    return {
        "captured": [
            {
                "table": t.table,
                "actions": CAPTURED_ACTIONS,
                "rowIdGuaranteed": t.row_id,
                "content": "enriched" if t.enriched else "generic",
            }
            for t in types.captured
        ],
        "custom": [
            {"table": table, "actions": sorted(actions, key=_ACTION_ORDER.__getitem__)}
            for table, actions in custom.items()
        ],
    }
