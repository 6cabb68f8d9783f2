"""JSON in and out, with orjson, and body size limits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import Request
from starlette import responses
from starlette.requests import ClientDisconnect

from webhook_manager.domain import exact_json
from webhook_manager.domain.errors import ClientGone, InvalidInput, PayloadTooLarge


class JSONResponse(responses.JSONResponse):
    """A JSON answer serialized by orjson (a JSONResponse, so FastAPI documents its body as JSON)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The one error shape: ``{"error": message}``."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body; raise PayloadTooLarge past ``limit`` bytes without reading the rest."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body over {limit} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"request body over {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientGone("the client went away before sending the whole body") from None
    request._body = b"".join(chunks)  # what Request.body() keeps, so request.form() can read it again
    return request._body


async def read_json(request: Request, limit: int) -> Any:
    """The request body decoded as JSON, whatever its Content-Type, integers beyond 64 bits kept exactly; raise
    InvalidInput naming ``body``."""
    return decode_json(await read_body(request, limit))


def decode_json(body: bytes) -> Any:
    """A request body read with :func:`read_body`, decoded as :func:`read_json` does."""
    if not body.strip():
        raise InvalidInput("body", "is empty: send a JSON object")
    try:
        return exact_json.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidInput("body", "is not valid JSON") from None
