"""``/healthz`` and ``/readyz``."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import run, serving
from webhook_manager.domain.errors import StoreUnavailable
from webhook_manager.settings import Settings
from webhook_manager.store import Store, open_store


def test_both_answer_while_the_store_does(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    assert http.get("/readyz").json() == {"status": "ok"}


class _BrokenStore:
    """A real SQLite store whose ping fails, as when the database cannot be reached."""

    def __init__(self, inner: Store) -> None:
        self._inner = inner

    async def ping(self) -> None:
        raise StoreUnavailable("store unavailable: disk I/O error")

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


def test_readyz_is_503_while_the_store_does_not_answer(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'wm.db'}")
    inner = run(open_store(settings.database_url))
    try:
        with serving(settings, store=_BrokenStore(inner)) as live, httpx.Client(base_url=live.url) as http:
            assert http.get("/healthz").status_code == 200
            answer = http.get("/readyz")
            assert answer.status_code == 503
            assert "store unavailable" in answer.json()["error"]
    finally:
        run(inner.close())
