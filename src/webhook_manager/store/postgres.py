"""Connection handling of the scale-out store: PostgreSQL through asyncpg, for many ``api`` and ``worker``
processes at once.

Processes share the work through the dialect's queries (``queries/postgres.sql``): a subject's events are
formed under a transaction-scoped advisory lock, so batches stay whole and in order, and due webhooks are
claimed with ``FOR UPDATE SKIP LOCKED`` and a lease that moves ``due_at``, so a worker that dies leaves its
webhooks to be claimed again when the lease runs out. LISTEN/NOTIFY only wakes the loops up: rows are the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg

from webhook_manager.domain.errors import StoreUnavailable
from webhook_manager.store.dialect import DuplicateKey, Row, Steps, WriteFailures, load_queries

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection = PoolConnectionProxy[Any]

T = TypeVar("T")

QUERIES = load_queries("postgres")
UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.exceptions.OperatorInterventionError,  # a cancelled statement, a shutting-down server
    asyncpg.exceptions.LockNotAvailableError,  # waited lock_timeout for a lock another session holds
    asyncpg.exceptions.InsufficientResourcesError,  # a full disk, too many connections
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # a read-only server (a standby)
)
LOCK_TIMEOUT_MS = 1000
"""A statement waits at most this long for a lock another session holds, then fails with StoreUnavailable,
so an API call answers 503 within 2 s instead of hanging (migrations wait as long as they must)."""
CHANNEL = "webhook_manager"
WATCH_RETRY_S = 1.0


def _changed(status: str) -> int:
    """Rows changed, from a command status such as ``UPDATE 3`` or ``INSERT 0 1``."""
    count = status.rpartition(" ")[2]
    return int(count) if count.isdigit() else 0


class PostgresDb:
    """A :class:`~webhook_manager.store.dialect.Db` over one pooled asyncpg connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def fetch(self, query: str, *args: Any) -> list[Row]:
        try:
            return await self._conn.fetch(QUERIES[query], *args)
        except asyncpg.UniqueViolationError as exc:
            raise DuplicateKey(str(exc)) from exc

    async def fetch_one(self, query: str, *args: Any) -> Row | None:
        rows = await self.fetch(query, *args)
        return rows[0] if rows else None

    async def fetch_value(self, query: str, *args: Any) -> Any:
        rows = await self.fetch(query, *args)
        return rows[0][0] if rows else None

    async def execute(self, query: str, *args: Any) -> int:
        try:
            return _changed(await self._conn.execute(QUERIES[query], *args))
        except asyncpg.UniqueViolationError as exc:
            raise DuplicateKey(str(exc)) from exc

    async def execute_rows(self, query: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            await self.execute(query, *(list(column) for column in zip(*rows, strict=True)))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with self._conn.transaction():
            yield

    async def run_script(self, script: str) -> None:
        await self._conn.execute(script)


class PostgresConnector:
    """The :class:`~webhook_manager.store.dialect.Connector` of one PostgreSQL database: a small pool."""

    dialect = "postgres"
    single_process = False
    units_commit = True  # each unit of a steps run is a transaction of its own

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        self._pool = pool
        self._url = url
        self._watcher: asyncio.Task[None] | None = None
        self._failures = WriteFailures()

    @classmethod
    async def open(cls, url: str) -> PostgresConnector:
        """Connect a small pool; StoreUnavailable when the server cannot be reached or refuses the connection."""
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=8,
                command_timeout=60,
                server_settings={"lock_timeout": str(LOCK_TIMEOUT_MS)},
            )
        except (*UNAVAILABLE, asyncpg.PostgresError) as exc:  # the server's refusal too: no such database or role
            raise StoreUnavailable(f"store unavailable: {exc}") from exc
        return cls(pool, url)

    @asynccontextmanager
    async def _db(self, *, transaction: bool) -> AsyncIterator[PostgresDb]:
        try:
            async with self._pool.acquire() as conn:
                if not transaction:
                    yield PostgresDb(conn)
                    return
                async with conn.transaction():
                    yield PostgresDb(conn)
        except UNAVAILABLE as exc:
            raise StoreUnavailable(f"store unavailable: {exc}") from exc

    async def read(self, steps: Steps[T]) -> T:
        async with self._db(transaction=False) as db:
            return await steps(db)

    async def write(self, steps: Steps[T], *, durable: bool = True) -> T:
        return await self._writing(steps, transaction=True)

    async def write_one(self, steps: Steps[T]) -> T:
        return await self._writing(steps, transaction=False)

    async def steps(self, steps: Steps[T]) -> T:
        return await self._writing(steps, transaction=False)

    async def _writing(self, steps: Steps[T], *, transaction: bool) -> T:
        try:
            async with self._db(transaction=transaction) as db:
                return await steps(db)
        except StoreUnavailable as exc:
            self._failures.note(exc.message)
            raise

    def write_problem(self) -> str | None:
        return self._failures.recent()

    disk_reserve_bytes = 0  # the server's disk is the server's to watch

    def intake_problem(self, pending_bytes: int) -> str | None:
        return None

    async def watch(self, wake: Callable[[str], None]) -> None:
        """LISTEN for other processes' ``events`` and ``webhooks`` notices, reconnecting after an outage.
        Only a wake-up: the loops poll the rows anyway, so a notice lost in an outage costs a poll's delay."""

        async def listen() -> None:
            while True:
                try:
                    conn = await asyncpg.connect(self._url, timeout=10)
                except (*UNAVAILABLE, asyncpg.PostgresError):
                    await asyncio.sleep(WATCH_RETRY_S)
                    continue
                closed = asyncio.Event()
                try:
                    conn.add_termination_listener(lambda _c, closed=closed: closed.set())
                    await conn.add_listener(CHANNEL, lambda _c, _pid, _channel, payload: wake(payload))
                    await closed.wait()
                except (*UNAVAILABLE, asyncpg.PostgresError):
                    pass
                finally:
                    if not conn.is_closed():
                        conn.terminate()
                wake("events")  # whatever was announced while deaf
                wake("webhooks")

        self._watcher = asyncio.create_task(listen(), name="postgres-listen")

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self._pool.close()
