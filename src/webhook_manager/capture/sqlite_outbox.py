"""Capture from an SQLite database: triggers write each change to an outbox table in the same file, in the
application's own transaction; the capture reads the outbox in id order (SQLite has one writer, so id order
is commit order), records it, then clears it.

- Wake-up: ``PRAGMA data_version`` on the capture's connection changes whenever another connection commits;
  it is polled every few milliseconds, which costs microseconds.
- Columns: the triggers are regenerated whenever ``PRAGMA schema_version`` moves and their text differs from
  what the tables now need (a column added or renamed, with ``data = "row"``).
- Position: the id of the last outbox row recorded. Ids come from AUTOINCREMENT, so they are never reused;
  the position is keyed by a random epoch kept in the file, so a teardown and a new set-up start afresh.
- One capture per file: a lock file beside it (``app.db-webhook-manager.lock``) makes a second one stand by.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import re
import secrets
import sqlite3
import time
from pathlib import Path
from typing import IO, Any

import orjson

from webhook_manager.capture.changes import Batch, Changes
from webhook_manager.capture.source import Prepared
from webhook_manager.capture.spec import CaptureSpec
from webhook_manager.domain.errors import CaptureBusy, CaptureError

log = logging.getLogger("webhook_manager.capture.sqlite")

OUTBOX = "webhook_manager_outbox"
META = "webhook_manager_capture"
TRIGGER_PREFIX = "webhook_manager_capture:"
POLL_S = 0.005
_ACTIONS = ("insert", "update", "delete")
_PAIRS_PER_CALL = 50  # json_object/json_set take at most 127 arguments by default
_NOW_MS = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"
_BARE_INFINITY = re.compile(rb"(?<=[:,\[])-?Inf(?=[,}\]])")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class SqliteSource:
    """A capture source over one SQLite file (see the module's notes)."""

    def __init__(self, spec: CaptureSpec) -> None:
        assert spec.database is not None
        self.spec = spec
        self.path = Path(spec.database)
        self.key = ""
        self._conn: sqlite3.Connection | None = None
        self._lock_file: IO[str] | None = None
        self._last_id = 0
        self._data_version = -1
        self._schema_version = -1

    # lifecycle

    def open(self) -> None:
        """Connect and check every table; raise CaptureError naming what to change."""
        if not self.path.is_file():
            raise CaptureError(f"database {str(self.path)!r}: no such file")
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 10000")
        self._conn = conn
        try:
            for table in self.spec.tables:
                self._row_id_column(table, self._columns(table))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def setup(self) -> Prepared:
        """Create the outbox and the triggers (idempotent)."""
        self._install()
        return Prepared(
            f"set up capture of {', '.join(self.spec.tables)} in {self.path} for client {self.spec.client_code}"
        )

    def teardown(self) -> Prepared:
        """Drop the triggers and the outbox; changes not yet recorded are dropped with it. Refused while a
        capture of the file runs (it would set them up again at once)."""
        try:
            self._take_lock()
        except CaptureBusy:
            raise CaptureError(f"a capture of {self.path} is running: stop it first") from None
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE ? ESCAPE '\\'",
                (TRIGGER_PREFIX.replace("_", "\\_") + "%",),
            ).fetchall():
                conn.execute(f"DROP TRIGGER {_quote(name)}")
            left, key = 0, None
            if self._has_table(OUTBOX):
                left = conn.execute(f"SELECT count(*) FROM {OUTBOX}").fetchone()[0]
            if self._has_table(META):
                (epoch,) = conn.execute(f"SELECT value FROM {META} WHERE key = 'epoch'").fetchone()
                key = self._key(epoch)
            conn.execute(f"DROP TABLE IF EXISTS {OUTBOX}")
            conn.execute(f"DROP TABLE IF EXISTS {META}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        note = f"; {left} changes not yet recorded were dropped" if left else ""
        return Prepared(
            f"removed the capture triggers and outbox from {self.path}{note}", key=key, forget=key is not None
        )

    def claim(self) -> str:
        """Take the file for this process and make sure the outbox and triggers are current."""
        self._take_lock()
        self._install()
        return self.key

    def row_ids(self) -> dict[str, bool]:
        """A table with a row-id column has its value in every change (a delete's trigger reads the old row)."""
        return {table: self._row_id_column(table, self._columns(table)) is not None for table in self.spec.tables}

    def resume(self, position: str | None) -> None:
        """Continue after outbox id ``position``, clearing the rows up to it (already recorded)."""
        self._last_id = int(position) if position else 0
        row = self._connection().execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (OUTBOX,)).fetchone()
        if self._last_id > (row[0] if row else 0):
            # ids are never reused, so an outbox behind the stored position was made again under the old epoch
            raise CaptureError(
                f"the capture outbox of {self.path} is older than what was recorded from it (restored from a"
                " backup?): run --teardown, then --setup"
            )
        self._clear(self._last_id)

    # reading

    def read(self, limit: int, wait_s: float) -> Batch | None:
        """The next changes (at most ``limit``), waiting up to ``wait_s`` for a commit when there are none."""
        batch = self._read(limit)
        deadline = time.monotonic() + wait_s
        while batch is None and time.monotonic() < deadline:
            if self._changed():
                batch = self._read(limit)
            else:
                time.sleep(POLL_S)
        return batch

    def acknowledge(self, ack: Any) -> None:
        """Outbox rows up to id ``ack`` are recorded: clear them."""
        self._clear(int(ack))

    def pending_changes(self) -> int:
        """Changes in the outbox not yet read (for the capture's metrics)."""
        (count,) = (
            self._connection().execute(f"SELECT count(*) FROM {OUTBOX} WHERE id > ?", (self._last_id,)).fetchone()
        )
        return int(count)

    def _read(self, limit: int) -> Batch | None:
        rows = (
            self._connection()
            .execute(
                f"SELECT id, table_name, action, row_id, data, changed_at FROM {OUTBOX}"
                " WHERE id > ? ORDER BY id LIMIT ?",
                (self._last_id, limit),
            )
            .fetchall()
        )
        if not rows:
            return None
        changes = Changes()
        add = changes.add
        for _, table, action, rid, data, changed_at in rows:
            add(table, action, rid, changed_at, None if data is None else _json(data))
        self._last_id = rows[-1][0]
        return Batch(changes, str(self._last_id), ack=self._last_id)

    def _changed(self) -> bool:
        conn = self._connection()
        (data_version,) = conn.execute("PRAGMA data_version").fetchone()
        if data_version == self._data_version:
            return False
        self._data_version = data_version
        (schema_version,) = conn.execute("PRAGMA schema_version").fetchone()
        if schema_version != self._schema_version:
            self._install(create=False)
        return True

    def _clear(self, up_to: int) -> None:
        self._connection().execute(f"DELETE FROM {OUTBOX} WHERE id <= ?", (up_to,))

    # the schema

    def _key(self, epoch: str) -> str:
        # The epoch changes with every set-up; the path tells apart copies of one file.
        return f"sqlite:{epoch}:{self.path.resolve()}"

    def _use_wal(self) -> None:
        """Capture reads the file every few milliseconds; in WAL mode readers never block the application's
        writers (in the default rollback-journal mode a writer without a busy timeout would fail)."""
        conn = self._connection()
        (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
        if str(mode).lower() == "wal":
            return
        try:
            (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        except sqlite3.OperationalError as exc:
            mode = str(exc)
        if str(mode).lower() != "wal":
            raise CaptureError(
                f"{self.path} is in {mode!r} journal mode and could not be switched to WAL, which capture needs so"
                f" that it never blocks the application: run sqlite3 {self.path} 'PRAGMA journal_mode=WAL'"
            )
        log.info("switched %s to WAL journal mode, so reading changes never blocks the application", self.path)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("source is not open")
        return self._conn

    def _take_lock(self) -> None:
        if self._lock_file is not None:
            return
        lock = open(f"{self.path}-webhook-manager.lock", "a")  # noqa: SIM115 - held open: it is the lock
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise CaptureBusy(f"another process captures {self.path}") from None
        self._lock_file = lock

    def _has_table(self, name: str) -> bool:
        return (
            self._connection()
            .execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
            .fetchone()
            is not None
        )

    def _columns(self, table: str) -> list[tuple[str, str, int]]:
        """(name, declared type, primary-key position) of each column; CaptureError when there is no table."""
        columns = [
            (name, decl or "", pk)
            for _, name, decl, _, _, pk in self._connection().execute(f"PRAGMA table_info({_quote(table)})")
        ]
        if not columns:
            raise CaptureError(f"no table {table!r} in {self.path} (tables: {', '.join(self.spec.tables)})")
        return columns

    def _row_id_column(self, table: str, columns: list[tuple[str, str, int]]) -> str | None:
        configured = self.spec.row_id_columns.get(table)
        if configured is not None:
            if configured not in {name for name, _, _ in columns}:
                raise CaptureError(f"row_id_columns: table {table!r} has no column {configured!r}")
            return configured
        keys = [(name, decl) for name, decl, pk in columns if pk]
        if len(keys) == 1 and "INT" in keys[0][1].upper():
            return keys[0][0]
        return None

    def triggers(self) -> dict[str, str]:
        """The trigger statements the tables need now, by trigger name."""
        wanted: dict[str, str] = {}
        for table in self.spec.tables:
            columns = self._columns(table)
            rid = self._row_id_column(table, columns)
            for action in _ACTIONS:
                ref = "OLD" if action == "delete" else "NEW"
                rid_sql = f"{ref}.{_quote(rid)}" if rid else "0"
                data_sql = "NULL"
                if self.spec.data == "row" and action != "delete":
                    data_sql = _row_json([name for name, _, _ in columns])
                name = f"{TRIGGER_PREFIX}{table}:{action}"
                wanted[name] = (
                    f"CREATE TRIGGER {_quote(name)} AFTER {action.upper()} ON {_quote(table)} BEGIN"
                    f" INSERT INTO {OUTBOX} (table_name, action, row_id, data, changed_at)"
                    f" VALUES ({_literal(table)}, '{action}', {rid_sql}, {data_sql}, {_NOW_MS}); END"
                )
        return wanted

    def _install(self, *, create: bool = True) -> None:
        """Create the outbox if needed (``create``) and bring the triggers in line with the tables' columns, in
        one transaction. While capturing (``create`` false) a missing or replaced outbox stops the capture
        rather than being made again under the old position."""
        conn = self._connection()
        if create:
            self._use_wal()
        conn.execute("BEGIN IMMEDIATE")
        try:
            epoch = self._outbox(create=create)
            self._sync_triggers()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self.key = self._key(epoch)
        (self._schema_version,) = conn.execute("PRAGMA schema_version").fetchone()

    def _outbox(self, *, create: bool) -> str:
        """Make the outbox and its notes when there are none (``create``) and check they are this capture's;
        return the epoch of its set-up."""
        conn = self._connection()
        tables = ",".join(sorted(self.spec.tables))
        if not self._has_table(META):
            if not create:
                raise CaptureError(f"the capture outbox of {self.path} was removed while capturing: run --setup again")
            conn.execute(
                f"CREATE TABLE {OUTBOX} (id INTEGER PRIMARY KEY AUTOINCREMENT, table_name TEXT NOT NULL,"
                " action TEXT NOT NULL, row_id, data TEXT, changed_at INTEGER NOT NULL)"
            )
            conn.execute(f"CREATE TABLE {META} (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            conn.execute(
                f"INSERT INTO {META} (key, value) VALUES ('epoch', ?), ('client_code', ?), ('tables', ?)",
                (secrets.token_hex(8), self.spec.client_code, tables),
            )
        meta = dict(conn.execute(f"SELECT key, value FROM {META}").fetchall())
        if meta["client_code"] != self.spec.client_code or meta["tables"] != tables:
            raise CaptureError(
                f"{self.path} captures {meta['tables'].replace(',', ', ')} for client {meta['client_code']},"
                f" not {', '.join(sorted(self.spec.tables))} for client {self.spec.client_code}: one file has"
                " one capture; run --teardown, then --setup with these tables"
            )
        if self.key and self.key != self._key(meta["epoch"]):
            raise CaptureError(f"the capture of {self.path} was set up again while capturing: start it again")
        return str(meta["epoch"])

    def _sync_triggers(self) -> None:
        """Drop the capture's triggers that differ from what the tables need now, and create the missing."""
        conn = self._connection()
        wanted = self.triggers()
        present = dict(
            conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE ? ESCAPE '\\'",
                (TRIGGER_PREFIX.replace("_", "\\_") + "%",),
            ).fetchall()
        )
        for name, sql in present.items():
            if wanted.get(name) != sql:
                conn.execute(f"DROP TRIGGER {_quote(name)}")
        for name, sql in wanted.items():
            if present.get(name) != sql:
                conn.execute(sql)
                log.info("capture trigger %s (re)created in %s", name, self.path)


def _row_json(columns: list[str]) -> str:
    """SQL building the row as a JSON object; BLOBs (which JSON cannot hold) as hex text."""

    def value(name: str) -> str:
        ref = f"NEW.{_quote(name)}"
        return f"CASE typeof({ref}) WHEN 'blob' THEN hex({ref}) ELSE {ref} END"

    first, rest = columns[:_PAIRS_PER_CALL], columns[_PAIRS_PER_CALL:]
    sql = "json_object(" + ", ".join(f"{_literal(c)}, {value(c)}" for c in first) + ")"
    for start in range(0, len(rest), _PAIRS_PER_CALL):
        chunk = rest[start : start + _PAIRS_PER_CALL]
        paths = ", ".join(f"{_literal('$.' + _quote(c))}, {value(c)}" for c in chunk)
        sql = f"json_set({sql}, {paths})"
    return sql


def _json(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        # SQLite writes an infinite REAL as a bare Inf, which JSON has no word for.
        with contextlib.suppress(orjson.JSONDecodeError):
            return orjson.loads(_BARE_INFINITY.sub(b"null", text.encode()))
        return None
