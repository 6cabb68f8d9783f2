"""``/v1/webhook-configuration``: Erply's configuration API (docs/api.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from webhook_manager.api import schemas
from webhook_manager.api.deps import ClockDep, SessionDep, SettingsDep, StoreDep
from webhook_manager.api.params import IdPath, checked_id
from webhook_manager.api.responses import JSONResponse, read_json
from webhook_manager.domain.errors import NotFound
from webhook_manager.domain.ids import new_id
from webhook_manager.domain.model import Configuration, ConfigurationCaps
from webhook_manager.domain.timefmt import rfc3339_ms
from webhook_manager.ingest.configuration_input import parse_configuration_input
from webhook_manager.settings import Settings

router = APIRouter(prefix="/v1/webhook-configuration", tags=["webhook-configuration"])

MAX_BODY = 64 * 1024
_BODY_DOC = schemas.request_body(schemas.InputWebhookConfiguration, "application/json")
_ONE = {
    "getWebhookConfiguration": schemas.link("getWebhookConfiguration", id="$response.body#/id"),
    "updateWebhookConfiguration": schemas.link("updateWebhookConfiguration", id="$response.body#/id"),
    "removeWebhookConfiguration": schemas.link("removeWebhookConfiguration", id="$response.body#/id"),
}


def caps_of(settings: Settings) -> ConfigurationCaps:
    """The configuration caps the settings give every client."""
    return ConfigurationCaps(settings.max_configurations_per_client, settings.max_configurations_per_subject)


def configuration_json(c: Configuration, now_ms: int) -> dict[str, Any]:
    """A configuration with exactly the keys of Erply's WebhookConfiguration, and the extension keys only when
    they say something: ``headers`` when it has custom headers, ``previousSecretUntil`` while a replaced secret
    still signs beside the new one at ``now_ms`` (never that secret itself)."""
    answer: dict[str, Any] = {
        "id": c.id,
        "clientcode": c.client_code,
        "table": c.table,
        "action": c.action.value,
        "endpoint": c.endpoint,
        "secret": c.secret,
        "disabled": c.disabled,
        "createdat": rfc3339_ms(c.created_at_ms),
        "updatedat": rfc3339_ms(c.updated_at_ms),
    }
    if c.headers:
        answer["headers"] = dict(c.headers)
    grace_until = c.secret_grace_until_ms(now_ms)
    if grace_until is not None:
        answer["previousSecretUntil"] = rfc3339_ms(grace_until)
    return answer


def grace_ms(settings: Settings) -> int:
    """How long a replaced secret keeps signing beside the new one (``secret_grace_h``), in ms."""
    return round(settings.secret_grace_h * 3_600_000)


@router.get(
    "",
    summary="Get webhook configurations",
    operation_id="getWebhookConfigurations",
    responses=schemas.answers(
        list[schemas.WebhookConfiguration],
        401,
        503,
        links={"getFirst": schemas.link("getWebhookConfiguration", id="$response.body#/0/id")},
    ),
)
async def list_configurations(session: SessionDep, store: StoreDep, clock: ClockDep) -> JSONResponse:
    """The client's configurations, oldest first."""
    configurations = await store.list_configurations(session.client_code)
    now = clock.now_ms()
    return JSONResponse([configuration_json(c, now) for c in configurations])


@router.post(
    "",
    summary="Add webhook configuration",
    operation_id="addWebhookConfiguration",
    responses=schemas.answers(schemas.WebhookConfiguration, 400, 401, 413, 503, links=_ONE),
    openapi_extra=_BODY_DOC,
)
async def add_configuration(
    request: Request, session: SessionDep, store: StoreDep, settings: SettingsDep, clock: ClockDep
) -> JSONResponse:
    """Add a configuration; action is one of insert, update, delete or confirm."""
    given = parse_configuration_input(
        await read_json(request, MAX_BODY), allow_private=settings.allow_private_endpoints
    )
    now = clock.now_ms()
    configuration = Configuration(
        id=new_id(now / 1000),
        client_code=session.client_code,
        table=given.table,
        action=given.action,
        endpoint=given.endpoint,
        secret=given.secret,
        disabled=given.disabled,
        created_at_ms=now,
        updated_at_ms=now,
        headers=given.headers,
    )
    await store.create_configuration(configuration, caps=caps_of(settings))
    return JSONResponse(configuration_json(configuration, now))


@router.get(
    "/{id}",
    summary="Get one webhook configuration (extension)",
    operation_id="getWebhookConfiguration",
    responses=schemas.answers(schemas.WebhookConfiguration, 400, 401, 404, 503),
)
async def get_configuration(id: IdPath, session: SessionDep, store: StoreDep, clock: ClockDep) -> JSONResponse:
    """One configuration of the client, by id."""
    configuration = await store.get_configuration(session.client_code, checked_id(id))
    if configuration is None:
        raise NotFound(f"no webhook configuration with id {id}")
    return JSONResponse(configuration_json(configuration, clock.now_ms()))


@router.put(
    "/{id}",
    summary="Update existing webhook configuration",
    operation_id="updateWebhookConfiguration",
    responses=schemas.answers(schemas.WebhookConfiguration, 400, 401, 404, 413, 503, links=_ONE),
    openapi_extra=_BODY_DOC,
)
async def replace_configuration(
    id: IdPath, request: Request, session: SessionDep, store: StoreDep, settings: SettingsDep, clock: ClockDep
) -> JSONResponse:
    """Replace every field of a configuration (a missing ``disabled`` means false, missing ``headers`` none); a
    new secret keeps the replaced one signing beside it for ``secret_grace_h`` hours."""
    checked_id(id)
    given = parse_configuration_input(
        await read_json(request, MAX_BODY), allow_private=settings.allow_private_endpoints
    )
    now = clock.now_ms()
    configuration = await store.replace_configuration(
        session.client_code, id, given, now, caps=caps_of(settings), secret_grace_ms=grace_ms(settings)
    )
    if configuration is None:
        raise NotFound(f"no webhook configuration with id {id}")
    return JSONResponse(configuration_json(configuration, now))


@router.delete(
    "/{id}",
    summary="Remove existing webhook configuration",
    operation_id="removeWebhookConfiguration",
    responses=schemas.answers(
        schemas.OutputOK,
        400,
        401,
        404,
        503,
        links={"getRemoved": schemas.link("getWebhookConfiguration", id="$request.path.id")},
    ),
)
async def remove_configuration(id: IdPath, session: SessionDep, store: StoreDep, clock: ClockDep) -> JSONResponse:
    """Remove a configuration; it gets no new webhooks."""
    if not await store.remove_configuration(session.client_code, checked_id(id), clock.now_ms()):
        raise NotFound(f"no webhook configuration with id {id}")
    return JSONResponse({"message": "configuration removed"})
