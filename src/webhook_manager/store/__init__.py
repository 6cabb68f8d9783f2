"""Storage: the port (:class:`Store`) and :func:`open_store`, which picks the adapter by URL."""

from __future__ import annotations

from webhook_manager.store.port import Store


async def open_store(url: str) -> Store:
    """Open the store named by ``url`` (``sqlite:///path``); the schema is not migrated here."""
    if url.startswith("sqlite:///"):
        from webhook_manager.store.sqlite import SqliteStore

        return await SqliteStore.open(url.removeprefix("sqlite:///"))
    raise ValueError(f"unsupported store URL {url!r}: use sqlite:///path/to/file.db")


__all__ = ["Store", "open_store"]
