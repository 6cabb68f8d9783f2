"""What handlers are handed: the app's context (store, settings, notifier, clock, metrics) and the caller's
session."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from webhook_manager.accounts import authenticate, authenticate_token
from webhook_manager.api.context import ApiContext, ServiceApp
from webhook_manager.delivery.notifier import Notifier
from webhook_manager.domain.clock import Clock
from webhook_manager.domain.model import Session
from webhook_manager.observability.metrics import Metrics
from webhook_manager.settings import Settings
from webhook_manager.store import Store

_client_code = APIKeyHeader(name="clientCode", scheme_name="ClientCode", auto_error=False)
_session_key = APIKeyHeader(name="sessionKey", scheme_name="SessionKey", auto_error=False)
_jwt = APIKeyHeader(name="jwt", scheme_name="Jwt", auto_error=False)


def get_context(request: Request) -> ApiContext:
    """The context the app was made with."""
    return cast(ServiceApp, request.app).context


ContextDep = Annotated[ApiContext, Depends(get_context)]


def get_store(context: ContextDep) -> Store:
    return context.store


def get_settings(context: ContextDep) -> Settings:
    return context.settings


def get_notifier(context: ContextDep) -> Notifier:
    return context.notifier


def get_clock(context: ContextDep) -> Clock:
    return context.clock


def get_metrics(context: ContextDep) -> Metrics:
    return context.metrics


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
NotifierDep = Annotated[Notifier, Depends(get_notifier)]
ClockDep = Annotated[Clock, Depends(get_clock)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


async def require_session(
    context: ContextDep,
    client_code: Annotated[str | None, Security(_client_code)],
    session_key: Annotated[str | None, Security(_session_key)],
    token: Annotated[str | None, Security(_jwt)],
) -> Session:
    """The caller's session, by its ``jwt`` header or else its ``clientCode`` and ``sessionKey``; 401 when
    they are missing, unknown, expired or mismatched."""
    now_ms = context.clock.now_ms()
    if token:
        return await authenticate_token(context.store, context.tokens, token, client_code, now_ms)
    return await authenticate(context.store, client_code, session_key, now_ms)


SessionDep = Annotated[Session, Depends(require_session)]
