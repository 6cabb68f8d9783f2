"""The FastAPI application over an open store: routers, and the one error mapping.

The app opens nothing itself: the composition root (:mod:`webhook_manager.service`) hands it the store, the
pipeline's notifier and the clock, which handlers reach through :mod:`.deps`.
"""

from __future__ import annotations

import dataclasses
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.routing import Match

from webhook_manager import __version__
from webhook_manager.api import (
    configurations,
    docs,
    erply,
    events,
    health,
    health_reports,
    metrics,
    openapi,
    webhook_types,
    webhooks,
)
from webhook_manager.api.context import ApiContext, ServiceApp
from webhook_manager.api.portal import router as portal_router
from webhook_manager.api.responses import JSONResponse, error_response
from webhook_manager.delivery.notifier import NO_PIPELINE, Notifier
from webhook_manager.domain.clock import SYSTEM_CLOCK, Clock
from webhook_manager.domain.errors import ClientGone, WebhookManagerError
from webhook_manager.identity import IdentityTokens
from webhook_manager.observability.metrics import NO_METRICS, Metrics
from webhook_manager.settings import Settings
from webhook_manager.store import Store

log = logging.getLogger("webhook_manager.api")

DESCRIPTION = """\
Erply-compatible Webhook Manager. Log in with `POST /api/` (`request=verifyUser`) for a session key, then
call `/v1/*` with the headers `clientCode` and `sessionKey`.
"""


def create_app(
    settings: Settings,
    store: Store,
    *,
    notifier: Notifier = NO_PIPELINE,
    clock: Clock = SYSTEM_CLOCK,
    tokens: IdentityTokens | None = None,
    observed: Metrics = NO_METRICS,
) -> ServiceApp:
    """The API over ``store`` (open and migrated); ``notifier`` wakes the pipeline of this process, if any;
    ``tokens`` signs identity tokens (by default with a key of this app's own); ``observed`` is what the process
    counts, shown at ``/metrics`` (none: no ``/metrics``)."""
    app = ServiceApp(
        title="webhook-manager",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,  # served by api/docs.py, from the package's own copy of Swagger UI
        openapi_url=docs.OPENAPI_PATH,
        redoc_url=None,
        default_response_class=JSONResponse,
    )
    context = ApiContext(settings, store, notifier, clock, metrics=observed)
    app.context = context if tokens is None else dataclasses.replace(context, tokens=tokens)
    app.include_router(erply.router)
    app.include_router(configurations.router)
    app.include_router(events.router)
    app.include_router(webhooks.router)
    app.include_router(webhook_types.router)
    app.include_router(health_reports.router)
    app.include_router(health.router)
    if observed.enabled:
        app.include_router(metrics.router)
    app.include_router(docs.router)
    app.include_router(portal_router)  # the dashboard at /
    openapi.install(app)
    _map_errors(app)
    return app


def _map_errors(app: FastAPI) -> None:
    """Every error leaves as ``{"error": "…"}`` with its status; never a traceback."""

    @app.exception_handler(WebhookManagerError)
    async def domain_error(request: Request, exc: WebhookManagerError) -> JSONResponse:
        if isinstance(exc, ClientGone):  # not an error of ours: a line for whoever debugs, no traceback
            log.debug("%s %s: %s", request.method, request.url.path, exc.message)
        return error_response(exc.status, exc.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"] if part not in ("body", "query", "path", "header"))
        problem = "is required" if first["type"] == "missing" else first["msg"]  # as the handlers say it
        return error_response(400, f"{field or 'request'}: {problem}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        headers = exc.headers
        if exc.status_code == 405:
            headers = {"Allow": ", ".join(_allowed_methods(request))}
        return error_response(exc.status_code, str(exc.detail), headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error")


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route answers at the request's path (Starlette's 405 names only the first route's):
    each method is matched as a request of it would be, through the routes' own ``matches`` (FastAPI wraps
    included routers in routes of its own, so the routes' paths and methods are not read directly). A path the
    OpenAPI document names literally is that resource's alone: ``/v1/webhook/resend`` is not an ``{id}`` of
    ``GET /v1/webhook/{id}`` (that route answers a GET of it 405), so its 405 allows POST alone."""
    routes = request.app.router.routes
    documented = request.app.openapi()["paths"].get(request.url.path)
    return [
        method
        for method in HTTP_METHODS
        if (documented is None or method.lower() in documented)
        and any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]
