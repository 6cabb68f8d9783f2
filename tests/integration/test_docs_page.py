"""``/api/docs``: Swagger UI served from the package's own pinned copy, so the page works offline and loads
nothing from a third party."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx

from webhook_manager.api import docs

STATIC = docs.STATIC_DIR


class _References(HTMLParser):
    """The URLs a page makes the browser fetch: scripts, style sheets, icons, images."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                self.urls.append(value)


def _references(page: str) -> list[str]:
    parser = _References()
    parser.feed(page)
    return parser.urls


def test_the_docs_page_references_only_this_service(http: httpx.Client) -> None:
    answer = http.get("/api/docs")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    urls = _references(answer.text)
    assert sorted(urls) == sorted(f"{docs.STATIC_PATH}/{name}" for name in docs.FILES)
    assert "url: '/api/docs/openapi.json'" in answer.text
    assert '"validatorUrl": null' in answer.text  # no badge fetched from validator.swagger.io
    assert not re.search(r"https?://", answer.text)


def test_swagger_ui_files_are_served_from_the_package(http: httpx.Client) -> None:
    for name, media_type in docs.FILES.items():
        answer = http.get(f"{docs.STATIC_PATH}/{name}")
        assert answer.status_code == 200, name
        assert answer.headers["content-type"] == media_type, name
        assert answer.content == (STATIC / name).read_bytes(), name


def test_only_the_pages_files_are_served(http: httpx.Client) -> None:
    for name in ("README.md", "LICENSE", "../docs.py", "swagger-ui-bundle.js.map"):
        assert http.get(f"{docs.STATIC_PATH}/{name}").status_code == 404, name


def test_the_copy_is_pinned_and_licensed() -> None:
    readme = (STATIC / "README.md").read_text(encoding="utf-8")
    assert f"swagger-ui-dist@{docs.SWAGGER_UI_VERSION}" in readme
    assert "Apache License\n                           Version 2.0" in (STATIC / "LICENSE").read_text(encoding="utf-8")
    assert (STATIC / "NOTICE").is_file()
    bundle = (STATIC / "swagger-ui-bundle.js").read_text(encoding="utf-8")
    assert f'PACKAGE_VERSION:"{docs.SWAGGER_UI_VERSION}"' in bundle  # the bundle's own version
