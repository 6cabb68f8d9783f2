"""``/``: the dashboard's files, served from the package with headers that let the page run only its own scripts
and styles; nothing else under the folder, nothing outside it. (The page itself runs in tests/browser.)"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from http.client import HTTPConnection
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import LiveServer
from webhook_manager.api import portal

UPLOT_VERSION = "1.6.32"
VENDOR = portal.PORTAL_DIR / "vendor" / "uplot"


class _Page(HTMLParser):
    """What a page makes the browser fetch, its inline scripts and its style attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self.style_attributes = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.urls += [v for k, v in attrs if k in ("src", "href") and v is not None and not v.startswith("#")]
        self.style_attributes += "style" in values or tag == "style"
        self.inline_scripts += any(k.startswith("on") for k in values)
        self._in_script = tag == "script" and "src" not in values

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False


def _assert_secured(answer: httpx.Response) -> None:
    assert answer.headers["content-security-policy"] == portal.CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in answer.headers["content-security-policy"]
    assert "'unsafe-inline'" not in answer.headers["content-security-policy"]
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["x-frame-options"] == "DENY"


def test_the_page_is_served_at_the_root_with_its_security_headers(http: httpx.Client) -> None:
    answer = http.get("/")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    _assert_secured(answer)
    page = _Page()
    page.feed(answer.text)
    assert page.inline_scripts == 0
    assert page.style_attributes == 0
    assert not re.search(r"https?://", answer.text)  # nothing from a CDN
    for url in page.urls:  # every file the page loads is here, relative to the root
        assert url.startswith("portal/"), url
        loaded = http.get(f"/{url}")
        assert loaded.status_code == 200, url
        _assert_secured(loaded)


def test_every_file_is_served_with_its_media_type(http: httpx.Client) -> None:
    served = [p for p in portal.PORTAL_DIR.rglob("*") if p.is_file() and p.suffix in portal.MEDIA_TYPES]
    assert len(served) >= 12
    for path in served:
        name = path.relative_to(portal.PORTAL_DIR).as_posix()
        answer = http.get(f"{portal.PORTAL_PATH}/{name}")
        assert answer.status_code == 200, name
        assert answer.headers["content-type"] == portal.MEDIA_TYPES[path.suffix], name
        assert answer.content == path.read_bytes(), name


def test_the_scripts_build_the_page_as_text_only() -> None:
    for path in (portal.PORTAL_DIR / "js").rglob("*.js"):
        source = path.read_text(encoding="utf-8")
        for unsafe in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert unsafe not in source, f"{path.name} uses {unsafe}"
        assert "localStorage" not in source, path.name  # the session is for the tab only: sessionStorage
        assert "document.cookie" not in source, path.name


@pytest.mark.parametrize(
    "name",
    [
        "README.md",
        "vendor/uplot/LICENSE",
        "vendor/uplot/README.md",
        "../portal.py",
        "..%2Fportal.py",
        "js/../../portal.py",
        "%2e%2e/%2e%2e/app.py",
        "js/",
        "js",
        "nothing.js",
        ".hidden.js",
        "js\\main.js",
        "/etc/passwd",
    ],
)
def test_nothing_else_is_served(http: httpx.Client, name: str) -> None:
    answer = http.get(f"{portal.PORTAL_PATH}/{name}")
    assert answer.status_code == 404, name
    assert "error" in answer.json()


@pytest.mark.parametrize("name", ["../portal.py", "js/../../portal.py", "js/./main.js", "/etc/passwd", "", "."])
def test_a_path_out_of_the_folder_is_refused(name: str) -> None:
    assert portal.portal_file_path(name) is None


@pytest.mark.parametrize(
    "target", ["/portal/../api/portal.py", "/portal/js/../../portal.py", "/portal/%2e%2e/portal.py"]
)
def test_dot_segments_on_the_wire_are_refused(server: LiveServer, target: str) -> None:
    # httpx and browsers drop dot segments before sending; a raw request line keeps them
    parts = urlsplit(server.url)
    connection = HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        connection.request("GET", target)
        answer = connection.getresponse()
        assert answer.status == 404, target
        assert b"error" in answer.read()
    finally:
        connection.close()


def test_the_portal_is_not_part_of_the_api_document(http: httpx.Client) -> None:
    paths = http.get("/api/docs/openapi.json").json()["paths"]
    assert "/" not in paths
    assert not any(p.startswith(portal.PORTAL_PATH) for p in paths)


def test_uplot_is_pinned_and_licensed() -> None:
    readme = (VENDOR / "README.md").read_text(encoding="utf-8")
    assert f"VERSION {UPLOT_VERSION}" in readme
    assert f"uplot@{UPLOT_VERSION}" in readme
    assert "The MIT License" in (VENDOR / "LICENSE").read_text(encoding="utf-8")
    banner = (VENDOR / "uPlot.iife.min.js").read_text(encoding="utf-8").splitlines()[0]
    assert f"(v{UPLOT_VERSION})" in banner
