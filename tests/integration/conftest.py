"""Stores for the contract suite: every test taking ``store`` runs once per adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.databases import postgres_database
from tests.receiver import Receiver
from webhook_manager.store import Store, open_store

STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty store of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store' / 'wm.db'}"
    else:
        with postgres_database() as url:
            yield url


@pytest.fixture(params=STORES)
def blank_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store of each kind with no schema at all."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store' / 'wm.db'}"
    else:
        with postgres_database(migrated=False) as url:
            yield url


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A real HTTP receiver on this test's event loop."""
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = await open_store(store_url)
    await opened.migrate()
    yield opened
    await opened.close()
