"""``/``: the web dashboard, a client's own portal (docs/dashboard.md).

Static files inside the package (static/portal: HTML, ES modules, CSS, and uPlot vendored under vendor/), served
as they are: no build step. The page is a client of the public API like any other (``verifyUser``, then
``/v1/*`` with ``clientCode`` and ``sessionKey``), so this module only hands out files, each with headers that
let the page run nothing but its own scripts and styles.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.exceptions import HTTPException

PORTAL_PATH = "/portal"
PORTAL_DIR = Path(__file__).parent / "static" / "portal"
# The kinds of file the portal serves, with their media types (not guessed: the system's tables differ). Any
# other file under the folder (README.md, LICENSE) is not served.
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",  # revalidated each time (ETag), so a new version shows at once
}

router = APIRouter(include_in_schema=False)


def _file(path: Path) -> FileResponse:
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=SECURITY_HEADERS)


def portal_file_path(name: str) -> Path | None:
    """The file of the portal at ``name`` (a path relative to its folder), or None when there is none to serve:
    not a file, a kind not in :data:`MEDIA_TYPES`, or a path leading out of the folder."""
    if not name or "\\" in name or "\x00" in name or any(part.startswith(".") for part in name.split("/")):
        return None
    root = PORTAL_DIR.resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root) or path.suffix not in MEDIA_TYPES or not path.is_file():
        return None
    return path


@router.get("/")
async def portal_index() -> FileResponse:
    """The dashboard's page."""
    return _file(PORTAL_DIR / "index.html")


@router.get(PORTAL_PATH + "/{name:path}")
async def portal_static(name: str) -> FileResponse:
    """One of the dashboard's files: its scripts, style sheet, icon and vendored chart library."""
    path = portal_file_path(name)
    if path is None:
        raise HTTPException(404, f"no portal file {name}", headers=SECURITY_HEADERS)
    return _file(path)
