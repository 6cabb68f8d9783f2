"""The FastAPI application: routers, the one error mapping, and the store's lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from webhook_manager import __version__
from webhook_manager.api import configurations, erply, events, health, webhooks
from webhook_manager.api.responses import JSONResponse, error_response
from webhook_manager.errors import WebhookManagerError
from webhook_manager.pipeline import Pipeline
from webhook_manager.settings import Settings
from webhook_manager.store import Store, open_store

log = logging.getLogger("webhook_manager.api")

DESCRIPTION = """\
Erply-compatible Webhook Manager. Log in with `POST /api/` (`request=verifyUser`) for a session key, then
call `/v1/*` with the headers `clientCode` and `sessionKey`.
"""


def create_app(settings: Settings, store: Store | None = None, *, run_pipeline: bool = False) -> FastAPI:
    """The API over ``store``, or over the store named by ``settings`` (opened and migrated on start).

    With ``run_pipeline`` the batcher, dispatcher and purger run in the same process (``serve``).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened = store
        if opened is None:
            opened = await open_store(settings.database_url)
        try:
            if store is None:
                await opened.migrate()
            app.state.store = opened
            if not run_pipeline:
                yield
                return
            pipeline = Pipeline(opened, settings)
            await pipeline.start(single_process=settings.database_url.startswith("sqlite:"))
            app.state.pipeline = pipeline
            try:
                yield
            finally:
                await pipeline.stop()
        finally:
            if store is None:
                await opened.close()

    app = FastAPI(
        title="webhook-manager",
        version=__version__,
        description=DESCRIPTION,
        docs_url="/api/docs",
        openapi_url="/api/docs/openapi.json",
        redoc_url=None,
        lifespan=lifespan,
        default_response_class=JSONResponse,
    )
    app.state.settings = settings
    app.include_router(erply.router)
    app.include_router(configurations.router)
    app.include_router(events.router)
    app.include_router(webhooks.router)
    app.include_router(health.router)
    _map_errors(app)
    return app


def _map_errors(app: FastAPI) -> None:
    """Every error leaves as ``{"error": "…"}`` with its status; never a traceback."""

    @app.exception_handler(WebhookManagerError)
    async def domain_error(request: Request, exc: WebhookManagerError) -> JSONResponse:
        return error_response(exc.status, exc.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"] if part not in ("body", "query", "path", "header"))
        return error_response(400, f"{field or 'request'}: {first['msg']}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error")
