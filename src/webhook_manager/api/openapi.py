"""The OpenAPI document (``/api/docs/openapi.json``): FastAPI's, plus what it cannot see in the routes.

The handlers read their bodies themselves, so the request body models are added to the components here;
``/v1`` calls need both headers (or a ``jwt`` one alone), so two security schemes make one requirement and the
third another; and bad input is
answered 400 (api/app.py), never FastAPI's 422, so those answers and their models are dropped.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from webhook_manager.api import schemas

REQUEST_MODELS = (
    schemas.InputWebhookConfiguration,
    schemas.InputEvents,
    schemas.InputResendFilter,
    schemas.ErplyRequest,
)
_VALIDATION_MODELS = ("HTTPValidationError", "ValidationError")


def install(app: FastAPI) -> None:
    """Serve :func:`document` as the app's OpenAPI document, built once."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document."""
    built = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    components = built.setdefault("components", {})
    models = components.setdefault("schemas", {})
    for name in _VALIDATION_MODELS:
        models.pop(name, None)
    models.update(request_models())
    # /v1 calls take clientCode and sessionKey together, or a jwt alone
    schemes = components.get("securitySchemes", {})
    headers: list[dict[str, list[str]]] = [{name: [] for name in schemes if name != "Jwt"}, {"Jwt": []}]
    for path_item in built["paths"].values():
        for operation in path_item.values():
            operation["responses"].pop("422", None)
            if operation.get("security"):
                operation["security"] = headers
    return built


def request_models() -> dict[str, Any]:
    """The JSON schemas of the request bodies and the models they use, as components."""
    _, top = models_json_schema(
        [(model, "validation") for model in REQUEST_MODELS], ref_template="#/components/schemas/{model}"
    )
    found: dict[str, Any] = top.get("$defs", {})
    return found
