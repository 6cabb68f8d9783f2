"""Browser tests: the dashboard in a real Chromium (Debian's package, /usr/bin/chromium), driven by Playwright.

Without Chromium the tests skip, saying why, except with ``CI=true``, where they fail. ``scripts/test-services``
installs it (``apt-get install chromium``). Each test gets a fresh browser context; ``shot(page, name)`` saves a
screenshot under the test's own output folder (pytest's ``tmp_path``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI

CHROMIUM = os.environ.get("WEBHOOK_MANAGER_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

if not Path(CHROMIUM).exists():
    reason = f"no Chromium at {CHROMIUM} (apt-get install chromium, or set WEBHOOK_MANAGER_TEST_CHROMIUM)"
    if IN_CI:
        raise RuntimeError(f"the browser tests need Chromium under CI=true: {reason}")
    pytest.skip(reason, allow_module_level=True)

from playwright.sync_api import (  # noqa: E402
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    sync_playwright,
)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Playwright, for one module at a time: its sync API runs an event loop on this thread while it is open,
    which the asyncio tests of other modules could not run beside."""
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
    yield launched
    launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    made = browser.new_context(viewport={"width": 1280, "height": 900})
    yield made
    made.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A page that fails the test on an uncaught script error or a console error (but the browser's note of an
    HTTP error answer, which the page handles)."""
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))

    def console(msg: ConsoleMessage) -> None:
        # an answer the page expects (401 after a session ends, 400 for a bad field) is logged by Chromium as
        # "Failed to load resource"; every other console error (a CSP violation, say) is a problem
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            problems.append(f"console error: {msg.text}")

    opened.on("console", console)
    yield opened
    assert not problems, problems


@pytest.fixture
def shot(tmp_path: Path) -> Callable[[Page, str], Path]:
    """Save a full-page screenshot of ``page`` as ``name``.png under the test's output folder."""

    def take(page: Page, name: str) -> Path:
        path = tmp_path / "screenshots" / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
