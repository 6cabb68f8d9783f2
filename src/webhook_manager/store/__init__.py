"""Storage: the port (:class:`Store`) and :func:`open_store`, which picks the adapter by URL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from webhook_manager.store.port import Store


async def open_store(url: str) -> Store:
    """Open the store named by ``url`` (``sqlite:///path`` or ``postgresql://…``); the schema is not migrated."""
    if url.startswith("sqlite:///"):
        from webhook_manager.store.sqlite import SqliteStore

        return await SqliteStore.open(url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql://", "postgres://")):
        from webhook_manager.store.postgres import PostgresStore

        return await PostgresStore.open(url)
    raise ValueError(f"unsupported store URL {url!r}: use sqlite:///path/to/file.db or postgresql://…")


@asynccontextmanager
async def migrated_store(url: str) -> AsyncIterator[Store]:
    """The store named by ``url``, its schema brought up to date, closed afterwards (for commands and tools)."""
    store = await open_store(url)
    try:
        await store.migrate()
        yield store
    finally:
        await store.close()


__all__ = ["Store", "migrated_store", "open_store"]
