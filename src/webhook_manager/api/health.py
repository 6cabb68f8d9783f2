"""``/healthz`` (the process runs) and ``/readyz`` (the store answers)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from webhook_manager.api import schemas
from webhook_manager.api.deps import StoreDep
from webhook_manager.api.responses import JSONResponse, error_response
from webhook_manager.domain.errors import StoreUnavailable

router = APIRouter(tags=["health"])

READY_TIMEOUT_S = 2.0


@router.get("/healthz", summary="Liveness", operation_id="healthz", responses=schemas.answers(schemas.Health))
async def healthz() -> JSONResponse:
    """200 while the process runs."""
    return JSONResponse({"status": "ok"})


@router.get("/readyz", summary="Readiness", operation_id="readyz", responses=schemas.answers(schemas.Health, 503))
async def readyz(store: StoreDep) -> JSONResponse:
    """200 while the store answers, 503 otherwise."""
    try:
        await asyncio.wait_for(store.ping(), READY_TIMEOUT_S)
    except (StoreUnavailable, TimeoutError) as exc:
        return error_response(503, f"store unavailable: {exc}")
    return JSONResponse({"status": "ok"})
