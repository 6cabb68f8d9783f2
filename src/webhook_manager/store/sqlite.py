"""Connection handling of the embedded store: one SQLite file in WAL mode, one writer thread, a few readers.

Every write runs on the single writer thread, in one ``BEGIN IMMEDIATE`` transaction per call, so writes
never wait on each other's locks; reads run on their own connections and see the last committed state. A
verb's steps (see :mod:`.dialect`) run on those threads: each of their ``Db`` calls returns at once, so the
whole coroutine is driven to its end without an event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import orjson

from webhook_manager.domain.errors import StoreUnavailable
from webhook_manager.store.dialect import Db, DuplicateKey, Row, Steps, WriteFailures, load_queries

T = TypeVar("T")

READERS = 4
WAL_KEPT_BYTES = 4 * 1024 * 1024
FORMING_FACTOR = 3
"""Room kept per byte of events not yet formed: its webhook bodies, their WAL frames, their index entries."""
WRITE_WAIT_S = 1.0
"""A write that cannot take the file's write lock within this (another process holds it), counting its wait
in the writer's queue behind writes that wait for it too, fails with StoreUnavailable: an API call answers 503
within 2 s instead of hanging."""
_PLACEHOLDER = re.compile(r"\$(\d+)")


class Query:
    """A named query with its ``$n`` placeholders turned into SQLite's ``?`` and the order to bind them in."""

    __slots__ = ("_as_given", "_lists", "order", "sql")

    def __init__(self, sql: str) -> None:
        self.order = [int(n) - 1 for n in _PLACEHOLDER.findall(sql)]
        self.sql = _PLACEHOLDER.sub("?", sql)
        # Most queries take their arguments once each, in order: those are bound as given (the hot paths).
        self._as_given = self.order == list(range(len(self.order)))
        self._lists = "json_each" in sql

    def bind(self, args: Sequence[Any]) -> Sequence[Any]:
        if self._lists:
            args = [orjson.dumps(a).decode() if isinstance(a, list | tuple) else a for a in args]
        if self._as_given:
            return args
        return [args[i] for i in self.order]


QUERIES = {name: Query(sql) for name, sql in load_queries("sqlite").items()}


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=WRITE_WAIT_S)
    conn.execute("PRAGMA journal_mode = WAL")
    # FULL: a commit is on disk before the caller is answered ("nothing accepted is lost").
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    # After a checkpoint the WAL is cut back to this, so one big transaction does not keep its size for good.
    conn.execute(f"PRAGMA journal_size_limit = {WAL_KEPT_BYTES}")
    conn.execute(f"PRAGMA busy_timeout = {int(WRITE_WAIT_S * 1000)}")
    return conn


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):  # the original error says more
                conn.execute("ROLLBACK")
        raise


def _statements(script: str) -> Iterator[str]:
    """Split a script into whole statements (triggers included), so it can run inside one transaction."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""
    if pending.strip() and not all(not ln.strip() or ln.strip().startswith("--") for ln in pending.splitlines()):
        raise ValueError(f"unterminated statement in migration: {pending[:80]!r}")


def drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run a verb's steps to their end on this thread: every ``Db`` call of SQLite returns at once."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("a store step on SQLite waited for something other than SQLite")


class SqliteDb:
    """A :class:`~webhook_manager.store.dialect.Db` over one sqlite3 connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def _run(self, query: str, args: Sequence[Any]) -> sqlite3.Cursor:
        q = QUERIES[query]
        try:
            return self._conn.execute(q.sql, q.bind(args))
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc):
                raise DuplicateKey(str(exc)) from exc
            raise

    async def fetch(self, query: str, *args: Any) -> list[Row]:
        return self._run(query, args).fetchall()

    async def fetch_one(self, query: str, *args: Any) -> Row | None:
        rows = self._run(query, args).fetchall()  # fetched whole, so a RETURNING statement completes
        return rows[0] if rows else None

    async def fetch_value(self, query: str, *args: Any) -> Any:
        rows = self._run(query, args).fetchall()
        return rows[0][0] if rows else None

    async def execute(self, query: str, *args: Any) -> int:
        return self._run(query, args).rowcount

    async def execute_rows(self, query: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            q = QUERIES[query]
            self._conn.executemany(q.sql, [q.bind(row) for row in rows])

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield  # a steps() run is one transaction already

    async def run_script(self, script: str) -> None:
        for statement in _statements(script):
            self._conn.execute(statement)


async def _nothing(db: Db) -> None:
    """Steps that do nothing, in a write transaction all the same."""


class SqliteConnector:
    """The :class:`~webhook_manager.store.dialect.Connector` of one SQLite file."""

    dialect = "sqlite"
    single_process = True
    units_commit = False  # a steps run is one transaction (one writer)

    def __init__(self, path: str, disk_reserve_bytes: int = 0) -> None:
        self._path = path
        self.disk_reserve_bytes = disk_reserve_bytes
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._readers = ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="sqlite-reader")
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._failures = WriteFailures()
        self._lock_failed_at = -math.inf  # when a write last found the file locked by another process

    @classmethod
    async def open(cls, path: str, disk_reserve_bytes: int = 0) -> SqliteConnector:
        """Open (and create) the file; its folder is created too. New events are refused while its disk has
        less than ``disk_reserve_bytes`` free, which is left to the pipeline."""
        connector = cls(path, disk_reserve_bytes)
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create the store's folder {Path(path).parent}: {exc.strerror}") from None
        try:
            await connector.write(_nothing)  # the file opens, and takes a write
        except BaseException:
            await connector.close()
            raise
        return connector

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self._path)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    async def _on(self, executor: ThreadPoolExecutor, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            try:
                return fn(self._connection())
            except sqlite3.IntegrityError:
                raise  # a broken rule is a bug, not an outage
            except sqlite3.DatabaseError as exc:
                raise StoreUnavailable(f"store unavailable: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(executor, call)

    async def read(self, steps: Steps[T]) -> T:
        return await self._on(self._readers, lambda conn: drive(steps(SqliteDb(conn))))

    async def write(self, steps: Steps[T], *, durable: bool = True) -> T:
        queued = time.monotonic()

        def in_transaction(conn: sqlite3.Connection) -> T:
            with self._lock_wait(conn, queued):
                if not durable:
                    conn.execute("PRAGMA synchronous = NORMAL")
                try:
                    with _transaction(conn):
                        return drive(steps(SqliteDb(conn)))
                finally:
                    if not durable:
                        conn.execute("PRAGMA synchronous = FULL")

        try:
            return await self._on(self._writer, in_transaction)
        except StoreUnavailable as exc:
            self._failures.note(exc.message)
            if "full" in exc.message:
                await self._give_back_wal()
            raise

    @contextmanager
    def _lock_wait(self, conn: sqlite3.Connection, queued: float) -> Iterator[None]:
        """The write's wait for the file's lock, on the writer thread. While another process holds the lock, it
        is what is left of WRITE_WAIT_S after the wait in the writer's queue, so calls queued behind a waiting
        write fail with it, not one after the other. (Without such a lock, a queue of this process's own writes
        is waited out: that is load, not an outage.)"""
        left = WRITE_WAIT_S
        if time.monotonic() - self._lock_failed_at < WRITE_WAIT_S:
            left -= time.monotonic() - queued
            if left <= 0:
                raise sqlite3.OperationalError(f"database is locked: writes waited over {WRITE_WAIT_S} s")
        shortened = left < WRITE_WAIT_S - 0.1
        if shortened:
            conn.execute(f"PRAGMA busy_timeout = {int(left * 1000)}")
        try:
            yield
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                self._lock_failed_at = time.monotonic()
            raise
        finally:
            if shortened:
                conn.execute(f"PRAGMA busy_timeout = {int(WRITE_WAIT_S * 1000)}")

    async def _give_back_wal(self) -> None:
        """After a write found the disk full: copy the WAL into the file and cut it to nothing, so the space a
        failed transaction's frames took is the disk's again (best effort: readers or the full disk may stop it)."""

        def checkpoint(conn: sqlite3.Connection) -> None:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

        with contextlib.suppress(StoreUnavailable):
            await self._on(self._writer, checkpoint)

    async def write_one(self, steps: Steps[T]) -> T:
        return await self.write(steps)

    async def steps(self, steps: Steps[T]) -> T:
        # One writer: the units of a run need no transactions of their own, and one commit costs one fsync.
        return await self.write(steps)

    async def watch(self, wake: Callable[[str], None]) -> None:
        """Nothing to watch: one process writes this store, and the loops poll it."""

    def write_problem(self) -> str | None:
        return self._failures.recent()

    def intake_problem(self, pending_bytes: int) -> str | None:
        if not self.disk_reserve_bytes:
            return None
        try:
            free = shutil.disk_usage(Path(self._path).parent).free
        except OSError as exc:
            return f"store unavailable: cannot tell the free space of its disk: {exc.strerror}"
        # Forming writes each pending event again, as part of a webhook's body (and once more in the WAL).
        needed = self.disk_reserve_bytes + FORMING_FACTOR * pending_bytes
        if free >= needed:
            return None
        mib = 1024 * 1024
        return (
            f"store nearly full: {free / mib:.1f} MiB free on its disk, less than the {needed / mib:.1f} MiB kept"
            f" for delivering what was accepted (disk_reserve_mb, and {pending_bytes / mib:.1f} MiB of events"
            " not yet formed into webhooks); free some space"
        )

    async def close(self) -> None:
        def close_all() -> None:
            self._writer.shutdown(wait=True)
            self._readers.shutdown(wait=True)
            with self._lock:
                for conn in self._connections:
                    conn.close()
                self._connections.clear()

        await asyncio.to_thread(close_all)
