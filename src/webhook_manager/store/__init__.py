"""Storage: the port (:class:`Store`) and :func:`open_store`, which picks the adapter by URL."""

from __future__ import annotations

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


__all__ = ["Store", "open_store"]
