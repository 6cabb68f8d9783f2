"""The embedded store: one SQLite file in WAL mode, one writer thread, a few reader threads.

Every write runs on the single writer thread, in one ``BEGIN IMMEDIATE`` transaction per call, so writes
never wait on each other's locks; reads run on their own connections and see the last committed state.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from webhook_manager.errors import Conflict, StoreUnavailable
from webhook_manager.model import (
    Attempt,
    AttemptOutcome,
    CapturedGroup,
    Configuration,
    ConfigurationInput,
    DueWebhook,
    EventRecord,
    FormWebhooks,
    LoginFailures,
    Session,
    User,
    WebhookRecord,
)
from webhook_manager.store import sqlite_pipeline as pipeline
from webhook_manager.store.sqlite_pipeline import CONFIGURATION_COLUMNS as _CONFIGURATION_COLUMNS

T = TypeVar("T")

_READERS = 4


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    conn.execute("PRAGMA journal_mode = WAL")
    # FULL: a commit is on disk before the caller is answered ("nothing accepted is lost").
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the original error says more
        raise


def migrations() -> list[tuple[int, str]]:
    """The schema's versions in order, as (version, SQL script), from the package's migrations folder."""
    folder = resources.files("webhook_manager.store.migrations.sqlite")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    return sorted(found)


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


class SqliteStore:
    """The :class:`~webhook_manager.store.port.Store` on one SQLite file."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._readers = ThreadPoolExecutor(max_workers=_READERS, thread_name_prefix="sqlite-reader")
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    @classmethod
    async def open(cls, path: str) -> SqliteStore:
        """Open (and create) the file; its folder is created too."""
        store = cls(path)
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create the store's folder {Path(path).parent}: {exc.strerror}") from None
        try:
            await store._write(lambda conn: None)
        except BaseException:
            await store.close()
            raise
        return store

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self._path)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    async def _run(self, executor: ThreadPoolExecutor, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            try:
                return fn(self._connection())
            except sqlite3.IntegrityError:
                raise  # a broken rule is a bug, not an outage
            except sqlite3.DatabaseError as exc:
                raise StoreUnavailable(f"store unavailable: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(executor, call)

    async def _write(self, fn: Callable[[sqlite3.Connection], T], *, durable: bool = True) -> T:
        def in_transaction(conn: sqlite3.Connection) -> T:
            if not durable:
                conn.execute("PRAGMA synchronous = NORMAL")
            try:
                with _transaction(conn):
                    return fn(conn)
            finally:
                if not durable:
                    conn.execute("PRAGMA synchronous = FULL")

        return await self._run(self._writer, in_transaction)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._run(self._readers, fn)

    async def close(self) -> None:
        def close_all() -> None:
            self._writer.shutdown(wait=True)
            self._readers.shutdown(wait=True)
            with self._lock:
                for conn in self._connections:
                    conn.close()
                self._connections.clear()

        await asyncio.to_thread(close_all)

    async def migrate(self) -> list[int]:
        def apply(conn: sqlite3.Connection) -> list[int]:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT (datetime('now')))"
            )
            applied = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
            done = []
            for version, script in migrations():
                if version in applied:
                    continue
                for statement in _statements(script):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", (version,))
                done.append(version)
            return done

        return await self._write(apply)

    async def watch(self, wake: Callable[[str], None]) -> None:
        """Nothing to watch: one process writes this store, and the loops poll it."""

    async def ping(self) -> None:
        await self._read(lambda conn: conn.execute("SELECT 1").fetchone())

    # accounts

    async def create_user(
        self, client_code: str, username: str, password_hash: str, now_ms: int, *, only_if_first: bool = False
    ) -> User | None:
        def create(conn: sqlite3.Connection) -> User | None:
            if only_if_first and conn.execute("SELECT 1 FROM users LIMIT 1").fetchone():
                return None
            conn.execute(
                "INSERT INTO clients (code, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (client_code, now_ms),
            )
            try:
                cur = conn.execute(
                    "INSERT INTO users (client_code, username, password_hash, created_at) VALUES (?, ?, ?, ?)",
                    (client_code, username, password_hash, now_ms),
                )
            except sqlite3.IntegrityError:
                raise Conflict(f"user {username!r} of client {client_code!r} exists already") from None
            assert cur.lastrowid is not None
            return User(cur.lastrowid, client_code, username, password_hash)

        return await self._write(create)

    async def has_users(self) -> bool:
        return await self._read(lambda conn: conn.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None)

    async def find_user(self, client_code: str, username: str) -> User | None:
        row = await self._read(
            lambda conn: conn.execute(
                "SELECT id, client_code, username, password_hash FROM users WHERE client_code = ? AND username = ?",
                (client_code, username),
            ).fetchone()
        )
        return None if row is None else User.from_row(row)

    async def login_failures(self, client_code: str, username: str) -> LoginFailures | None:
        row = await self._read(
            lambda conn: conn.execute(
                "SELECT count, last_failure_at FROM login_failures WHERE client_code = ? AND username = ?",
                (client_code, username),
            ).fetchone()
        )
        return None if row is None else LoginFailures(row[0], row[1])

    async def record_login_failure(
        self, client_code: str, username: str, now_ms: int, restart_before_ms: int
    ) -> LoginFailures:
        def record(conn: sqlite3.Connection) -> LoginFailures:
            # Rows whose run is over are dropped a few at a time, so guessing names cannot fill the disk.
            conn.execute(
                "DELETE FROM login_failures WHERE rowid IN (SELECT rowid FROM login_failures"
                " WHERE last_failure_at < ? LIMIT 100)",
                (restart_before_ms,),
            )
            row = conn.execute(
                "INSERT INTO login_failures (client_code, username, count, last_failure_at)"
                " VALUES (?, ?, 1, ?)"
                " ON CONFLICT (client_code, username) DO UPDATE SET"
                "  count = CASE WHEN last_failure_at < ? THEN 1 ELSE count + 1 END,"
                "  last_failure_at = excluded.last_failure_at"
                " RETURNING count, last_failure_at",
                (client_code, username, now_ms, restart_before_ms),
            ).fetchall()[0]
            return LoginFailures(row[0], row[1])

        return await self._write(record)

    async def clear_login_failures(self, client_code: str, username: str) -> None:
        await self._write(
            lambda conn: conn.execute(
                "DELETE FROM login_failures WHERE client_code = ? AND username = ?", (client_code, username)
            )
        )

    # sessions

    async def create_session(self, session: Session, *, purge_expired_before_ms: int) -> None:
        def create(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM sessions WHERE expires_at < ?", (purge_expired_before_ms,))
            conn.execute(
                "INSERT INTO sessions (key_hash, user_id, client_code, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                (
                    session.key_hash,
                    session.user_id,
                    session.client_code,
                    session.created_at_ms,
                    session.expires_at_ms,
                ),
            )

        await self._write(create)

    async def find_session(self, key_hash: bytes) -> Session | None:
        row = await self._read(
            lambda conn: conn.execute(
                "SELECT key_hash, user_id, client_code, created_at, expires_at FROM sessions WHERE key_hash = ?",
                (key_hash,),
            ).fetchone()
        )
        return None if row is None else Session.from_row(row)

    # configurations

    async def list_configurations(self, client_code: str) -> list[Configuration]:
        rows = await self._read(
            lambda conn: conn.execute(
                f"SELECT {_CONFIGURATION_COLUMNS} FROM configurations WHERE client_code = ? ORDER BY seq",
                (client_code,),
            ).fetchall()
        )
        return [Configuration.from_row(row) for row in rows]

    async def get_configuration(self, client_code: str, configuration_id: str) -> Configuration | None:
        row = await self._read(
            lambda conn: conn.execute(
                f"SELECT {_CONFIGURATION_COLUMNS} FROM configurations WHERE id = ? AND client_code = ?",
                (configuration_id, client_code),
            ).fetchone()
        )
        return None if row is None else Configuration.from_row(row)

    async def create_configuration(self, configuration: Configuration) -> None:
        c = configuration

        def create(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO clients (code, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (c.client_code, c.created_at_ms),
            )
            conn.execute(
                f"INSERT INTO configurations ({_CONFIGURATION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _configuration_values(c),
            )

        await self._write(create)

    async def replace_configuration(
        self, client_code: str, configuration_id: str, new: ConfigurationInput, now_ms: int
    ) -> Configuration | None:
        def replace(conn: sqlite3.Connection) -> Any:
            rows = conn.execute(
                "UPDATE configurations SET table_name = ?, action = ?, endpoint = ?, secret = ?, disabled = ?,"
                " updated_at = ? WHERE id = ? AND client_code = ?"
                f" RETURNING {_CONFIGURATION_COLUMNS}",
                (
                    new.table,
                    new.action.value,
                    new.endpoint,
                    new.secret,
                    int(new.disabled),
                    now_ms,
                    configuration_id,
                    client_code,
                ),
            ).fetchall()
            if rows and new.disabled:
                pipeline.fail_unsent(conn, configuration_id, "configuration disabled", now_ms)
            return rows[0] if rows else None

        row = await self._write(replace)
        return None if row is None else Configuration.from_row(row)

    async def remove_configuration(self, client_code: str, configuration_id: str, now_ms: int) -> bool:
        def remove(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "DELETE FROM configurations WHERE id = ? AND client_code = ?", (configuration_id, client_code)
            )
            if cur.rowcount == 0:
                return False
            pipeline.fail_unsent(conn, configuration_id, "configuration removed", now_ms)
            return True

        return await self._write(remove)

    # the pipeline

    async def record_events(
        self, client_code: str, table: str, action: str, items: bytes, count: int, now_ms: int
    ) -> bool:
        return await self._write(
            lambda conn: pipeline.record_events(conn, client_code, table, action, items, count, now_ms)
        )

    async def capture_position(self, source: str) -> str | None:
        return await self._read(lambda conn: pipeline.capture_position(conn, source))

    async def forget_capture(self, source: str) -> bool:
        return await self._write(
            lambda conn: conn.execute("DELETE FROM capture_positions WHERE source = ?", (source,)).rowcount > 0
        )

    async def record_captured(
        self,
        client_code: str,
        source: str,
        expected: str | None,
        position: str,
        groups: Sequence[CapturedGroup],
        now_ms: int,
    ) -> int:
        return await self._write(
            lambda conn: pipeline.record_captured(conn, client_code, source, expected, position, groups, now_ms)
        )

    async def form_webhooks(self, form: FormWebhooks, now_ms: int) -> tuple[int, int | None]:
        return await self._write(lambda conn: pipeline.form_webhooks(conn, form, now_ms))

    async def claim_due_webhooks(
        self, now_ms: int, limit: int, lease_ms: int, in_flight: Mapping[str, int], per_endpoint: int
    ) -> list[DueWebhook]:
        # Not fsynced: a lease lost with the machine only means the webhook is tried again, and every lease
        # is dropped at start anyway.
        return await self._write(
            lambda conn: pipeline.claim_due_webhooks(conn, now_ms, limit, lease_ms, in_flight, per_endpoint),
            durable=False,
        )

    async def record_attempts(self, outcomes: Sequence[AttemptOutcome]) -> None:
        await self._write(lambda conn: pipeline.record_attempts(conn, outcomes))

    async def release_leases(self, now_ms: int) -> int:
        return await self._write(lambda conn: pipeline.release_leases(conn, now_ms))

    async def list_webhooks(
        self, client_code: str, table: str | None, action: str | None, limit: int
    ) -> list[WebhookRecord]:
        return await self._read(lambda conn: pipeline.list_webhooks(conn, client_code, table, action, limit))

    async def get_webhook(self, client_code: str, webhook_id: str) -> tuple[WebhookRecord, bytes, list[Attempt]] | None:
        return await self._read(lambda conn: pipeline.get_webhook(conn, client_code, webhook_id))

    async def resend_webhook(self, client_code: str, webhook_id: str, now_ms: int) -> str | None:
        return await self._write(lambda conn: pipeline.resend_webhook(conn, client_code, webhook_id, now_ms))

    async def list_events(self, client_code: str, table: str, action: str, limit: int) -> list[EventRecord]:
        return await self._read(lambda conn: pipeline.list_events(conn, client_code, table, action, limit))

    async def purge_finished(self, before_ms: int, limit: int) -> int:
        return await self._write(lambda conn: pipeline.purge_finished(conn, before_ms, limit))


def _configuration_values(c: Configuration) -> tuple[Any, ...]:
    return (
        c.id,
        c.client_code,
        c.table,
        c.action.value,
        c.endpoint,
        c.secret,
        int(c.disabled),
        c.created_at_ms,
        c.updated_at_ms,
    )
