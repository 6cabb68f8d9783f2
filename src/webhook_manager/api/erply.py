"""``/api/``: Erply's session calls (verifyUser, getSessionKeyInfo, getSessionKeyUser), identity tokens
(getIdentityToken, verifyIdentityToken) and service discovery (getServiceEndpoints), answered in Erply's shape
(docs/api.md), by POST or GET.

Erply answers every request with HTTP 200 and puts the outcome in ``status``; clients written for Erply
read ``status.errorCode``, so this endpoint does the same.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException

from webhook_manager import accounts
from webhook_manager.accounts import LoginError
from webhook_manager.api import docs, schemas
from webhook_manager.api.context import ApiContext
from webhook_manager.api.deps import ContextDep
from webhook_manager.api.responses import JSONResponse, read_body
from webhook_manager.domain.errors import PayloadTooLarge
from webhook_manager.domain.model import Session, User
from webhook_manager.identity import TokenError

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

    def ok_object(self, record: dict[str, Any]) -> JSONResponse:
        """An answer whose ``records`` is the record itself, as Erply's token calls give it."""
        return JSONResponse({"status": self._status(0, 1), "records": record})

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
    summary="Erply API: verifyUser, getSessionKeyInfo, getSessionKeyUser, identity tokens, getServiceEndpoints",
    operation_id="erplyApi",
    responses=schemas.answers(schemas.ErplyAnswer),
    openapi_extra=_FORM_DOC,
)
@router.post("/api", include_in_schema=False)
@router.get(
    "/api/",
    summary="Erply API by GET: the same calls, their fields in the query string",
    operation_id="erplyApiGet",
    responses=schemas.answers(schemas.ErplyAnswer),
    openapi_extra=schemas.query_parameters(schemas.ErplyRequest),
)
@router.get("/api", include_in_schema=False)
async def erply_api(request: Request, context: ContextDep) -> JSONResponse:
    """Erply's calls, by POST (a form, multipart or JSON) or by GET with the fields in the query string."""
    try:
        fields = await _fields(request)
    except ValueError as exc:
        return _Answer("").error(INVALID_VALUE, str(exc))
    except PayloadTooLarge:
        return _Answer("").error(INVALID_VALUE, "body")
    name = fields.get("request", "")
    answer = _Answer(name)
    handler = _CALLS.get(name)
    if handler is None:
        return answer.error(UNKNOWN_REQUEST, "request")
    call = _Call(fields, context, request.client.host if request.client is not None else "", context.clock.now_ms())
    try:
        return await handler(answer, call)
    except LoginError as exc:
        return answer.error(exc.code)


@dataclass(frozen=True, slots=True)
class _Call:
    """One call's fields, with what answering it needs."""

    fields: dict[str, str]
    context: ApiContext
    address: str
    now_ms: int

    def get(self, name: str) -> str:
        return self.fields.get(name, "")

    async def session(self) -> tuple[Session, User]:
        """The live session of the call's ``sessionKey`` (of its ``clientCode``) and its user; LoginError else."""
        session = await accounts.session_info(self.context.store, self.get("sessionKey"), self.now_ms)
        user = await self.context.store.get_user(session.user_id)
        if user is None or session.client_code != self.get("clientCode"):
            raise LoginError(accounts.SESSION_INVALID, "session key of another client")
        return session, user


async def _verify_user(answer: _Answer, call: _Call) -> JSONResponse:
    try:
        length = accounts.session_length(call.fields.get("sessionLength"))
    except ValueError:
        return answer.error(INVALID_VALUE, "sessionLength")
    context = call.context
    new = await accounts.verify_user(
        context.store,
        context.settings,
        context.logins,
        address=call.address,
        client_code=call.get("clientCode"),
        username=call.get("username"),
        password=call.get("password"),
        length_s=length,
        now_ms=call.now_ms,
    )
    record: dict[str, Any] = {
        "userID": str(new.user.id),
        "userName": new.user.username,
        "sessionKey": new.key,
        "sessionLength": length,
    }
    if call.get("doNotGenerateIdentityToken") != "1":
        record["identityToken"] = record["token"] = context.tokens.issue(new.user, new.session)
    return answer.ok(record)


async def _session_key_info(answer: _Answer, call: _Call) -> JSONResponse:
    session, _ = await call.session()
    return answer.ok(
        {
            "creationUnixTime": str(session.created_at_ms // 1000),
            "expireUnixTime": str(session.expires_at_ms // 1000),
        }
    )


async def _session_key_user(answer: _Answer, call: _Call) -> JSONResponse:
    session, user = await call.session()
    token = call.context.tokens.issue(user, session)
    return answer.ok(
        {
            "userID": str(user.id),
            "userName": user.username,
            "sessionKey": call.get("sessionKey"),
            "sessionLength": (session.expires_at_ms - session.created_at_ms) // 1000,
            "ipAddress": call.address,
            "identityToken": token,
            "token": token,
        }
    )


async def _identity_token(answer: _Answer, call: _Call) -> JSONResponse:
    session, user = await call.session()
    return answer.ok_object({"identityToken": call.context.tokens.issue(user, session)})


async def _verify_identity_token(answer: _Answer, call: _Call) -> JSONResponse:
    """A token of a live session → a new session key of that user, expiring with the token's session (only
    the SHA-256 of the token's own key is kept, so that one cannot be given back)."""
    store, token = call.context.store, call.get("jwt")
    if not token:
        raise LoginError(accounts.CREDENTIALS_MISSING, "jwt missing")
    try:
        session = await accounts.authenticate_token(
            store, call.context.tokens, token, call.get("clientCode") or None, call.now_ms
        )
    except TokenError as exc:
        code = accounts.SESSION_EXPIRED if "expired" in exc.message else accounts.SESSION_INVALID
        raise LoginError(code, exc.message) from None
    key = accounts.new_session_key()
    fresh = Session(
        accounts.hash_session_key(key), session.user_id, session.client_code, call.now_ms, session.expires_at_ms
    )
    await store.create_session(fresh, purge_expired_before_ms=call.now_ms - accounts.EXPIRED_KEPT_MS)
    return answer.ok_object({"sessionKey": key})


async def _service_endpoints(answer: _Answer, call: _Call) -> JSONResponse:
    """Where this service's own APIs are: the webhook manager, and nothing it does not provide."""
    base = call.context.settings.base_url()
    webhook = {"url": f"{base}/", "documentation": f"{base}{docs.DOCS_PATH}", "isSandbox": False}
    return answer.ok({"webhook": webhook})


_CALLS: dict[str, Callable[[_Answer, _Call], Awaitable[JSONResponse]]] = {
    "verifyUser": _verify_user,
    "getSessionKeyInfo": _session_key_info,
    "getSessionKeyUser": _session_key_user,
    "getIdentityToken": _identity_token,
    "verifyIdentityToken": _verify_identity_token,
    "getServiceEndpoints": _service_endpoints,
}
