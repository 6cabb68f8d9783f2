"""Storage: the port (:class:`Store`), its one logic over SQL (:mod:`.sql_store`), and :func:`open_store`,
which picks the adapter a URL names. Only this package knows SQL, and only it knows which store it is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from webhook_manager.store.port import Store

SQLITE_PREFIX = "sqlite:///"
POSTGRES_PREFIXES = ("postgresql://", "postgres://")


def url_problem(url: str) -> str | None:
    """What is wrong with a store URL, or None when it names a store this package can open."""
    if url.startswith(POSTGRES_PREFIXES):
        return None
    if not url.startswith(SQLITE_PREFIX):
        return "must be a sqlite:///path/to/file.db or postgresql://user@host:5432/db URL"
    if url in (SQLITE_PREFIX, SQLITE_PREFIX + ":memory:"):
        return "must name a file: use sqlite:///path/to/file.db"
    return None


async def open_store(url: str, *, disk_reserve_bytes: int = 0) -> Store:
    """Open the store named by ``url`` (``sqlite:///path`` or ``postgresql://…``); the schema is not migrated.
    On SQLite, new events are refused while the file's disk has less than ``disk_reserve_bytes`` free."""
    from webhook_manager.store.sql_store import SqlStore

    problem = url_problem(url)
    if problem is not None:
        raise ValueError(f"unsupported store URL {url!r}: {problem}")
    if url.startswith(SQLITE_PREFIX):
        from webhook_manager.store.sqlite import SqliteConnector

        return SqlStore(await SqliteConnector.open(url.removeprefix(SQLITE_PREFIX), disk_reserve_bytes))
    try:
        from webhook_manager.store.postgres import PostgresConnector
    except ImportError as exc:  # pragma: no cover - the extra is installed wherever the tests run
        from webhook_manager.domain.errors import StoreUnavailable

        raise StoreUnavailable(
            f"a PostgreSQL store needs asyncpg ({exc.name} is missing): pip install 'webhook-manager[postgres]'"
        ) from None
    return SqlStore(await PostgresConnector.open(url))


@asynccontextmanager
async def migrated_store(url: str, *, disk_reserve_bytes: int = 0) -> AsyncIterator[Store]:
    """The store named by ``url``, its schema brought up to date, closed afterwards (for commands and tools)."""
    store = await open_store(url, disk_reserve_bytes=disk_reserve_bytes)
    try:
        await store.migrate()
        yield store
    finally:
        await store.close()


__all__ = ["Store", "migrated_store", "open_store", "url_problem"]
