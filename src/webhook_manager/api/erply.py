"""``POST /api/``: Erply's verifyUser and getSessionKeyInfo, answered in Erply's shape (docs/api.md).

Erply answers every request with HTTP 200 and puts the outcome in ``status``; clients written for Erply
read ``status.errorCode``, so this endpoint does the same.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException

from webhook_manager import accounts
from webhook_manager.accounts import LoginError
from webhook_manager.api import schemas
from webhook_manager.api.deps import ClockDep, ContextDep, SettingsDep, StoreDep
from webhook_manager.api.responses import JSONResponse, read_body
from webhook_manager.domain.errors import PayloadTooLarge
from webhook_manager.login_guard import LoginGuard
from webhook_manager.settings import Settings
from webhook_manager.store import Store

router = APIRouter(tags=["session"])

UNKNOWN_REQUEST = 1006
INVALID_VALUE = 1016
MAX_BODY = 64 * 1024

_FORM_DOC = schemas.request_body(
    schemas.ErplyRequest, "application/x-www-form-urlencoded", "multipart/form-data", "application/json"
)


class _Answer:
    """Builds Erply's ``{"status": …, "records": […]}`` envelope."""

    def __init__(self, request: str) -> None:
        self.request = request
        self.started = time.perf_counter()

    def _status(self, code: int, records: int) -> dict[str, Any]:
        return {
            "request": self.request,
            "requestUnixTime": int(time.time()),
            "responseStatus": "error" if code else "ok",
            "errorCode": code,
            "generationTime": round(time.perf_counter() - self.started, 6),
            "recordsTotal": records,
            "recordsInResponse": records,
        }

    def ok(self, record: dict[str, Any]) -> JSONResponse:
        return JSONResponse({"status": self._status(0, 1), "records": [record]})

    def error(self, code: int, field: str | None = None) -> JSONResponse:
        status = self._status(code, 0)
        if field is not None:
            status["errorField"] = field
        return JSONResponse({"status": status, "records": []})


async def _fields(request: Request) -> dict[str, str]:
    """The call's fields from the query string, then a JSON or form body (the body wins).

    Raise ValueError naming what is wrong: a body that is not an object of strings and numbers, or too big.
    """
    fields = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    body = await read_body(request, MAX_BODY)
    if "json" in content_type:
        try:
            decoded = orjson.loads(body) if body.strip() else {}
        except orjson.JSONDecodeError:
            raise ValueError("body") from None
        if not isinstance(decoded, dict):
            raise ValueError("body")
        for key, value in decoded.items():
            if isinstance(value, bool) or not isinstance(value, str | int | None):
                raise ValueError(key)
            fields[key] = "" if value is None else str(value)
    elif body:
        try:
            async with request.form(max_files=0, max_fields=100) as form:
                fields.update({k: v for k, v in form.items() if isinstance(v, str)})
        except HTTPException:
            raise ValueError("body") from None
    return fields


@router.post(
    "/api/",
    summary="Erply API: verifyUser, getSessionKeyInfo",
    operation_id="erplyApi",
    responses=schemas.answers(schemas.ErplyAnswer),
    openapi_extra=_FORM_DOC,
)
@router.post("/api", include_in_schema=False)
async def erply_api(
    request: Request, store: StoreDep, settings: SettingsDep, clock: ClockDep, context: ContextDep
) -> JSONResponse:
    """Log in for a session key (verifyUser) or look a key up (getSessionKeyInfo)."""
    try:
        fields = await _fields(request)
    except ValueError as exc:
        return _Answer("").error(INVALID_VALUE, str(exc))
    except PayloadTooLarge:
        return _Answer("").error(INVALID_VALUE, "body")
    name = fields.get("request", "")
    answer = _Answer(name)
    try:
        if name == "verifyUser":
            address = request.client.host if request.client is not None else ""
            return await _verify_user(answer, fields, store, settings, context.logins, address, clock.now_ms())
        if name == "getSessionKeyInfo":
            return await _session_key_info(answer, fields, store, clock.now_ms())
    except LoginError as exc:
        return answer.error(exc.code)
    return answer.error(UNKNOWN_REQUEST, "request")


async def _verify_user(
    answer: _Answer,
    fields: dict[str, str],
    store: Store,
    settings: Settings,
    guard: LoginGuard,
    address: str,
    now_ms: int,
) -> JSONResponse:
    try:
        length = accounts.session_length(fields.get("sessionLength"))
    except ValueError:
        return answer.error(INVALID_VALUE, "sessionLength")
    new = await accounts.verify_user(
        store,
        settings,
        guard,
        address=address,
        client_code=fields.get("clientCode", ""),
        username=fields.get("username", ""),
        password=fields.get("password", ""),
        length_s=length,
        now_ms=now_ms,
    )
    return answer.ok(
        {
            "userID": str(new.user.id),
            "userName": new.user.username,
            "sessionKey": new.key,
            "sessionLength": length,
        }
    )


async def _session_key_info(answer: _Answer, fields: dict[str, str], store: Store, now_ms: int) -> JSONResponse:
    session = await accounts.session_info(store, fields.get("sessionKey", ""), now_ms)
    if session.client_code != fields.get("clientCode"):
        raise LoginError(accounts.SESSION_INVALID, "session key of another client")
    return answer.ok(
        {
            "creationUnixTime": str(session.created_at_ms // 1000),
            "expireUnixTime": str(session.expires_at_ms // 1000),
        }
    )
