"""``/api/docs``: Swagger UI over the OpenAPI document, from Swagger UI's files vendored in this package
(static/swagger-ui, pinned; its README.md says where they came from). The page loads nothing from elsewhere."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

SWAGGER_UI_VERSION = "5.35.0"
DOCS_PATH = "/api/docs"
OPENAPI_PATH = "/api/docs/openapi.json"
STATIC_PATH = "/api/docs/static"
STATIC_DIR = Path(__file__).parent / "static" / "swagger-ui"
# The files the page uses, with their media types (not guessed: the system's tables differ).
FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}

router = APIRouter(include_in_schema=False)


@router.get(DOCS_PATH)
async def swagger_ui(request: Request) -> HTMLResponse:
    """The Swagger UI page; its scripts, style and icon come from this service."""
    root = request.scope.get("root_path", "").rstrip("/")
    return get_swagger_ui_html(
        openapi_url=root + OPENAPI_PATH,
        title=f"{request.app.title} - API docs",
        swagger_js_url=f"{root}{STATIC_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{STATIC_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{root}{STATIC_PATH}/favicon-32x32.png",
        # Swagger UI would send the document to validator.swagger.io for its badge.
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get(STATIC_PATH + "/{name}")
async def swagger_ui_file(name: str) -> FileResponse:
    """One of Swagger UI's files."""
    media_type = FILES.get(name)
    if media_type is None:
        raise HTTPException(404, "Not Found")
    return FileResponse(STATIC_DIR / name, media_type=media_type)
