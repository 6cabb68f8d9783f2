"""What handlers are handed: the store, the settings, and the authenticated session."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from webhook_manager.accounts import authenticate
from webhook_manager.model import Session
from webhook_manager.settings import Settings
from webhook_manager.store import Store
from webhook_manager.timefmt import now_ms

_client_code = APIKeyHeader(name="clientCode", scheme_name="ClientCode", auto_error=False)
_session_key = APIKeyHeader(name="sessionKey", scheme_name="SessionKey", auto_error=False)


def get_store(request: Request) -> Store:
    """The store opened by the app's lifespan."""
    return cast(Store, request.app.state.store)


def get_settings(request: Request) -> Settings:
    """The settings the app was made with."""
    return cast(Settings, request.app.state.settings)


async def require_session(
    store: Annotated[Store, Depends(get_store)],
    client_code: Annotated[str | None, Security(_client_code)],
    session_key: Annotated[str | None, Security(_session_key)],
) -> Session:
    """The caller's session; 401 when the headers are missing, unknown, expired or mismatched."""
    return await authenticate(store, client_code, session_key, now_ms())


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(require_session)]
