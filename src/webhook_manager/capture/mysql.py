"""Capture from MySQL or MariaDB by reading the row-based binary log, as a replica would, with the
``mysql-replication`` package.

- The server must write a binlog (``log_bin``) in ``ROW`` format with ``binlog_row_metadata = FULL`` (so
  row events name their columns); the user needs ``REPLICATION SLAVE`` and ``REPLICATION CLIENT`` (MariaDB:
  ``BINLOG MONITOR``). A source that lacks any of this stops with one line saying what to change.
- Position: a binlog file and offset where reading starts again, and how many changes of the transaction
  starting there are already recorded (``-1``: none is open there). It is stored with the events, so a
  capture killed at any moment and started again loses and doubles nothing. ``--setup`` stores the current
  end of the binlog as the starting point; ``--teardown`` forgets the position.
- While the captured tables are idle the position still moves forward every few seconds, so the binlog
  files it points into may be purged; a stored position that is no longer on the server stops the capture
  and says how to start again.
- Timestamps are the commit's (the XID event's time, to the second). TRUNCATE, and a change logged as a
  statement rather than rows, is one ``delete`` event with rowId 0.
- The binlog is read by a thread of its own (the library blocks); heartbeats every second let it notice a
  stop. One capture per source: a named lock (``GET_LOCK``) makes a second one stand by.
"""

from __future__ import annotations

import contextlib
import datetime
import decimal
import hashlib
import logging
import queue
import re
import socket
import threading
import time
import zlib
from typing import Any
from urllib.parse import unquote, urlsplit

import pymysql
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import (
    GtidEvent,
    HeartbeatLogEvent,
    MariadbGtidEvent,
    QueryEvent,
    RotateEvent,
    XAPrepareEvent,
    XidEvent,
)
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

from webhook_manager.capture.changes import Batch, Change, json_or_text
from webhook_manager.capture.spec import CaptureSpec
from webhook_manager.errors import CaptureBusy, CaptureError

log = logging.getLogger("webhook_manager.capture.mysql")

HEARTBEAT_S = 1.0  # the server sends one this often while idle, so the reader notices a stop
IDLE_POSITION_S = 5.0  # how often an idle source's position moves on
MORE_OF_A_TRANSACTION_S = 0.005
READ_AHEAD = 20_000  # binlog events read ahead of what is handed over
_INTEGER_TYPES = frozenset({"tinyint", "smallint", "mediumint", "int", "integer", "bigint"})
_ACCESS_DENIED = (1045, 1142, 1227, 1044)
_NAME = r"(`[^`]+`|[A-Za-z0-9_$]+)(?:\.(`[^`]+`|[A-Za-z0-9_$]+))?"
_STATEMENT = re.compile(  # the table a TRUNCATE, or a change logged as a statement, names first
    r"^\s*(?:/\*.*?\*/\s*)*(?:"
    r"truncate\s+(?:table\s+)?"
    r"|(?:insert|replace)\s+(?:(?:low_priority|delayed|high_priority|ignore)\s+)*(?:into\s+)?"
    r"|update\s+(?:(?:low_priority|ignore)\s+)*"
    r"|delete\s+(?:(?:low_priority|quick|ignore)\s+)*from\s+"
    r")" + _NAME,
    re.IGNORECASE | re.DOTALL,
)
_MULTI_TABLE_DELETE = re.compile(r"^\s*(?:/\*.*?\*/\s*)*delete\b", re.IGNORECASE | re.DOTALL)
_DONE = -1


class ColumnsUnknown(RuntimeError):
    """A row event whose columns the library could not name."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def parse_position(position: str) -> tuple[str, int, int]:
    """``"<file>:<offset>:<changes recorded>"`` → its parts."""
    file, offset, count = position.rsplit(":", 2)
    return file, int(offset), int(count)


def json_safe(value: Any) -> Any:
    """A column value as the binlog library gives it, as JSON."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, decimal.Decimal):
        return json_or_text(str(value))
    if isinstance(value, datetime.timedelta):  # a TIME column: [-]HHH:MM:SS[.ffffff]
        sign, rest = ("-", -value) if value < datetime.timedelta(0) else ("", value)
        minutes, seconds = divmod(rest.days * 86_400 + rest.seconds, 60)
        fraction = f".{rest.microseconds:06d}" if rest.microseconds else ""
        return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}:{seconds:02d}{fraction}"
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return str(value)
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return value.hex()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, dict):
        return {str(json_safe(k)): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return str(value)


class MysqlSource:
    """A capture source over a MySQL/MariaDB binlog (see the module's notes)."""

    def __init__(self, spec: CaptureSpec) -> None:
        self.spec = spec
        parts = urlsplit(spec.dsn or "")
        self._settings: dict[str, Any] = {
            "host": parts.hostname or "127.0.0.1",
            "port": parts.port or 3306,
            "user": unquote(parts.username or "root"),
            "password": unquote(parts.password or ""),
            "connect_timeout": 10,
        }
        self.database = unquote(parts.path.lstrip("/"))
        if not self.database:
            raise CaptureError("--dsn: name the application's database, as in mysql://user@host:3306/app")
        self.key = (
            f"mysql:{self._settings['host']}:{self._settings['port']}/{self.database}:{spec.client_code}:"
            + ",".join(sorted(spec.tables))
        )
        self._server_id = 1_000_000 + zlib.crc32(self.key.encode()) % 1_000_000_000
        self._conn: Any = None
        # table name in the binlog (schema, table) → (name in events, row-id column)
        self._tables: dict[tuple[str, str], tuple[str, str | None]] = {}
        self._reader: threading.Thread | None = None
        self._events: queue.Queue[Any] = queue.Queue(maxsize=READ_AHEAD)  # binlog events, or the reader's error
        self._stop = threading.Event()
        self._stream: Any = None
        # reading state
        self._file = ""
        self._boundary = 0  # where the open transaction began (or the last one ended)
        self._in_tx = False
        self._saw_begin = False
        self._tx_index = 0
        self._tx_skip = 0
        self._tx_changes: list[tuple[str, str, Any, Any, int]] = []
        self._skip: tuple[str, int, int] | None = None
        self._last_position_at = 0.0
        self._handed = ""
        self.setup_position = ""

    # lifecycle

    def _connect(self) -> Any:
        try:
            conn = pymysql.connect(**self._settings, database=self.database, autocommit=True, charset="utf8mb4")
            with conn.cursor() as cur:  # it holds the named lock: an idle server must not drop it
                cur.execute("SET SESSION wait_timeout = 31536000")
            return conn
        except pymysql.err.OperationalError as exc:
            code = exc.args[0] if exc.args else 0
            if code in _ACCESS_DENIED or code == 1049:
                raise CaptureError(f"{self.spec.describe()}: {exc.args[1] if len(exc.args) > 1 else exc}") from None
            raise ConnectionError(f"cannot connect to {self.spec.describe()}: {_first_line(exc)}") from exc

    def open(self) -> None:
        self._conn = self._connect()
        try:
            self._check_server()
            self._find_tables()
        except BaseException:
            self.close()
            raise

    def _query(self, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
        with self._conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())

    def _check_server(self) -> None:
        [(log_bin, binlog_format, row_image)] = self._query("SELECT @@log_bin, @@binlog_format, @@binlog_row_image")
        if not int(log_bin):
            raise CaptureError(
                "binary logging is off on the server: start it with log_bin (e.g. log-bin = mysql-bin and a"
                " server_id in the [mysqld] section of its configuration)"
            )
        if str(binlog_format).upper() != "ROW":
            raise CaptureError(
                f"the server's binlog_format is {binlog_format}; capture needs ROW: run SET GLOBAL binlog_format ="
                " 'ROW' and put binlog_format = ROW in its configuration"
            )
        try:
            [(metadata,)] = self._query("SELECT @@binlog_row_metadata")
        except pymysql.err.OperationalError:
            raise CaptureError(
                "the server has no binlog_row_metadata (it needs MySQL 8.0.1 or MariaDB 10.5 or newer)"
            ) from None
        if str(metadata).upper() != "FULL":
            raise CaptureError(
                f"the server's binlog_row_metadata is {metadata}; capture needs FULL, so row events name their"
                " columns: run SET GLOBAL binlog_row_metadata = 'FULL' and put it in its configuration"
            )
        if self.spec.data == "row" and str(row_image).upper() not in ("FULL", "NOBLOB"):
            raise CaptureError(
                f"the server's binlog_row_image is {row_image}; data = row needs FULL: run SET GLOBAL"
                " binlog_row_image = 'FULL' and put it in its configuration"
            )
        try:
            [(compressed,)] = self._query("SELECT @@binlog_transaction_compression")
        except pymysql.err.OperationalError:
            compressed = 0  # MariaDB, and MySQL before 8.0.20, do not compress
        if int(compressed):
            raise CaptureError(
                "the server compresses binlog transactions, which capture cannot read: run SET GLOBAL"
                " binlog_transaction_compression = OFF and put it in its configuration"
            )
        grants = " ".join(str(row[0]) for row in self._query("SHOW GRANTS")).upper()
        replicates = "ALL PRIVILEGES ON *.*" in grants or "REPLICATION SLAVE" in grants
        monitors = "ALL PRIVILEGES ON *.*" in grants or any(
            g in grants for g in ("REPLICATION CLIENT", "BINLOG MONITOR", "SUPER")
        )
        if not (replicates and monitors):
            [(user,)] = self._query("SELECT CURRENT_USER()")
            account = "'{}'@'{}'".format(*str(user).rsplit("@", 1))
            raise CaptureError(
                f"user {user} lacks the replication grants capture needs: run GRANT REPLICATION SLAVE,"
                f" REPLICATION CLIENT ON *.* TO {account} (MariaDB: REPLICATION SLAVE, BINLOG MONITOR)"
            )

    def _find_tables(self) -> None:
        for name in self.spec.tables:
            schema, _, table = name.rpartition(".")
            schema = schema or self.database
            columns = self._query(
                "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_KEY, TABLE_SCHEMA, TABLE_NAME FROM information_schema.COLUMNS"
                " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
                (schema, table),
            )
            if not columns:
                raise CaptureError(f"no table {name!r} in database {schema!r}")
            column = self.spec.row_id_columns.get(name)
            if column is not None:
                if column not in {c[0] for c in columns}:
                    raise CaptureError(f"row_id_columns: table {name!r} has no column {column!r}")
            else:
                keys = [(c[0], str(c[1]).lower()) for c in columns if c[2] == "PRI"]
                column = keys[0][0] if len(keys) == 1 and keys[0][1] in _INTEGER_TYPES else None
            # the names as the server spells them, which is how the binlog names them
            self._tables[(str(columns[0][3]), str(columns[0][4]))] = (name, column)

    def close(self) -> None:
        self._stop.set()
        if self._reader is not None:
            # wake the reader from a blocking receive (best effort: the socket is the library's)
            sock = getattr(getattr(self._stream, "_stream_connection", None), "_sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._reader.join(timeout=HEARTBEAT_S * 6)
            self._reader = None
        if self._stream is not None:
            try:
                self._stream.close()
            except Exception:  # already gone with its connection
                pass
            self._stream = None
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None

    def current_position(self) -> str:
        """The end of the binlog now: where a new capture starts."""
        try:
            rows = self._query("SHOW MASTER STATUS")
        except pymysql.err.ProgrammingError:  # MySQL 8.4 renamed it
            rows = self._query("SHOW BINARY LOG STATUS")
        if not rows:
            raise CaptureError("binary logging is off on the server: start it with log_bin")
        return f"{rows[0][0]}:{rows[0][1]}:{_DONE}"

    def setup(self) -> str:
        self.setup_position = self.current_position()
        return (
            f"set up capture of {', '.join(self.spec.tables)} in {self.database} for client {self.spec.client_code}:"
            f" from binlog position {self.setup_position.rsplit(':', 1)[0]}"
        )

    def teardown(self) -> str:
        """Refused while a capture of this source runs; the position itself is forgotten by the caller."""
        self.claim()
        return f"forgot the binlog position of the capture of {', '.join(self.spec.tables)} in {self.database}"

    def claim(self) -> str:
        name = "webhook_manager:" + hashlib.sha1(self.key.encode()).hexdigest()
        [(got,)] = self._query("SELECT GET_LOCK(%s, 0)", (name,))
        if got != 1:
            raise CaptureBusy(f"another process captures {', '.join(self.spec.tables)} of {self.spec.describe()}")
        return self.key

    def resume(self, position: str | None) -> None:
        if position is None:
            position = self.current_position()
        file, offset, count = parse_position(position)
        on_server = {str(row[0]) for row in self._query("SHOW BINARY LOGS")}
        if file not in on_server:
            raise CaptureError(
                f"the stored binlog position {file}:{offset} is no longer on the server (its binlogs were purged),"
                " so the changes since are lost: run capture mysql … --teardown, then --setup, to start again from"
                " now"
            )
        self._file, self._boundary = file, offset
        self._skip = (file, offset, count) if count > 0 else None
        self._handed = position
        self._stream = BinLogStreamReader(
            # no heartbeat for this long means the link is dead: the library then reconnects, or fails
            connection_settings=dict(self._settings, read_timeout=HEARTBEAT_S * 5),
            server_id=self._server_id,
            log_file=file,
            log_pos=offset,
            resume_stream=True,
            blocking=True,
            slave_heartbeat=HEARTBEAT_S,
            only_events=[
                WriteRowsEvent,
                UpdateRowsEvent,
                DeleteRowsEvent,
                QueryEvent,
                XidEvent,
                RotateEvent,
                GtidEvent,
                MariadbGtidEvent,
                XAPrepareEvent,
                HeartbeatLogEvent,
            ],
            # No only_tables/only_schemas: the library would then skip the table maps of other tables, and
            # after a server restart (which reuses table ids) decode their rows with a captured table's layout.
            enable_logging=False,
            use_column_name_cache=True,  # names from information_schema should a table map lack them
        )
        self._reader = threading.Thread(target=self._read_binlog, name=f"binlog-{self.key}", daemon=True)
        self._reader.start()

    def _read_binlog(self) -> None:
        """The library's blocking loop, on a thread of its own: events into the queue (or the error)."""
        try:
            for event in self._stream:
                while not self._stop.is_set():
                    try:
                        self._events.put(event, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
        except BaseException as exc:
            while not self._stop.is_set():
                try:
                    self._events.put(exc, timeout=0.2)
                    return
                except queue.Full:
                    continue

    def acknowledge(self, ack: Any) -> None:
        """Nothing to release on the server: the binlog is the server's own."""

    # reading

    def read(self, limit: int, wait_s: float) -> Batch | None:
        changes: list[Change] = []
        position: str | None = None
        deadline = time.monotonic() + wait_s
        waited = False
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                try:
                    if changes or position is not None:
                        if not self._in_tx or waited:
                            break  # hand over what there is rather than wait
                        # the server is still sending this transaction: a moment's wait makes one batch of
                        # what would otherwise be many small ones
                        waited = True
                        event = self._events.get(timeout=MORE_OF_A_TRANSACTION_S)
                    else:
                        event = self._events.get(timeout=max(0.001, deadline - time.monotonic()))
                except queue.Empty:
                    if changes or position is not None:
                        break
                    return self._idle_position()
            if isinstance(event, BaseException):
                raise self._explain(event)
            ended = self._event(event, changes)
            if ended is not None:
                position = ended
                waited = False
                if len(changes) >= limit:
                    break
            elif self._in_tx and len(self._tx_changes) >= limit:
                position = self._cut(changes)
                break
            elif not changes and position is None and time.monotonic() >= deadline:
                return self._idle_position()  # a busy binlog with nothing of ours in it
        if position is None:
            return None
        self._handed = position
        self._last_position_at = time.monotonic()
        return Batch(changes, position)

    def _idle_position(self) -> Batch | None:
        """Nothing of ours is happening: move the stored position to the last transaction boundary now and
        then, so it does not point into binlogs that may be purged."""
        if self._in_tx or time.monotonic() - self._last_position_at < IDLE_POSITION_S:
            return None
        position = f"{self._file}:{self._boundary}:{_DONE}"
        self._last_position_at = time.monotonic()
        if position == self._handed:
            return None
        self._handed = position
        return Batch([], position)

    def _explain(self, exc: BaseException) -> BaseException:
        if isinstance(exc, pymysql.err.OperationalError) and exc.args and exc.args[0] in _ACCESS_DENIED:
            return CaptureError(
                f"user of {self.spec.describe()} may not read the binlog ({exc.args[1]}): run GRANT REPLICATION"
                " SLAVE, REPLICATION CLIENT ON *.* TO it (MariaDB: REPLICATION SLAVE, BINLOG MONITOR)"
            )
        if isinstance(exc, pymysql.err.OperationalError) and exc.args and exc.args[0] == 1236:
            return CaptureError(
                f"the server cannot send the binlog from the stored position ({exc.args[1]}): run capture mysql …"
                " --teardown, then --setup, to start again from now (changes since are lost)"
            )
        return exc

    def _cut(self, changes: list[Change]) -> str:
        """A transaction too large for one batch: hand over what there is, stamped with when each statement
        ran, and remember how many of its changes are taken."""
        for table, action, rid, data, when_ms in self._tx_changes:
            changes.append((table, action, rid, when_ms, data))
        self._tx_changes = []
        return f"{self._file}:{self._boundary}:{self._tx_index}"

    def _event(self, event: Any, changes: list[Change]) -> str | None:
        """Take one binlog event; return the position after it when it ends a transaction."""
        if isinstance(event, RotateEvent):
            # A real rotation only comes between transactions; inside one, this is the library reconnecting
            # at its own last offset, which is no place to start a transaction from.
            if not self._in_tx:
                self._file, self._boundary = event.next_binlog, event.position
            return None
        if isinstance(event, HeartbeatLogEvent):
            return None
        end = event.packet.log_pos
        if isinstance(event, (GtidEvent, MariadbGtidEvent)):
            self._begin()
            # MariaDB writes no BEGIN: its GTID event says whether a group of events follows (ended by XID or
            # COMMIT, maybe with SAVEPOINTs inside) or a statement stands alone (flag 1, FL_STANDALONE)
            if isinstance(event, MariadbGtidEvent) and not event.flags & 1:
                self._saw_begin = True
            return None
        if isinstance(event, (XidEvent, XAPrepareEvent)):
            # (changes of a two-phase transaction are taken when it is prepared)
            return self._commit(end, event.timestamp * 1000, changes)
        if isinstance(event, QueryEvent):
            query = event.query if isinstance(event.query, str) else event.query.decode(errors="replace")
            word = query.strip().upper()
            if word == "BEGIN" or word.startswith("XA START") or word.startswith("XA BEGIN"):
                if not self._in_tx:
                    self._begin()
                self._saw_begin = True
                return None
            if word in ("COMMIT", "ROLLBACK"):  # a ROLLBACK here leaves changes of tables that cannot roll back
                return self._commit(end, event.timestamp * 1000, changes)
            if word.startswith("XA END"):
                return None
            if not self._in_tx:
                self._begin()
            table = self._statement_table(query, event.schema)
            if table is not None:
                self._add(table, "delete", 0, None, event.timestamp * 1000)
            if not self._saw_begin:  # a statement on its own (DDL, TRUNCATE)
                return self._commit(end, event.timestamp * 1000, changes)
            return None
        if isinstance(event, (WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent)):
            known = self._tables.get((event.schema, event.table))
            if known is None:
                return None
            if not self._in_tx:
                self._begin()
            name, column = known
            when_ms = event.timestamp * 1000
            if isinstance(event, WriteRowsEvent):
                action, key = "insert", "values"
            elif isinstance(event, UpdateRowsEvent):
                action, key = "update", "after_values"
            else:
                action, key = "delete", "values"
            row_data = self.spec.data == "row" and action != "delete"
            rows = event.rows
            if rows and any(name.startswith("UNKNOWN_COL") for name in rows[0][key]):
                # The library could not tell the columns' names for this table map; guessing would record
                # wrong row ids, so read again from the stored position.
                raise ColumnsUnknown(
                    f"the binlog gave no column names for {name} at {self._file}:{event.packet.log_pos}"
                )
            for row in rows:
                values = row[key]
                rid = values.get(column) if column is not None else 0
                if rid is None and action == "update":  # a MINIMAL row image leaves unchanged keys out
                    rid = row["before_values"].get(column)
                self._add(name, action, rid, json_safe(values) if row_data else None, when_ms)
        return None

    def _begin(self) -> None:
        self._in_tx, self._saw_begin, self._tx_index, self._tx_changes = True, False, 0, []
        skip = self._skip
        self._tx_skip = skip[2] if skip is not None and (skip[0], skip[1]) == (self._file, self._boundary) else 0
        self._skip = None

    def _add(self, table: str, action: str, rid: Any, data: Any, when_ms: int) -> None:
        self._tx_index += 1
        if self._tx_index > self._tx_skip:
            self._tx_changes.append((table, action, rid, data, when_ms))

    def _commit(self, end: int, commit_ms: int, changes: list[Change]) -> str | None:
        """The transaction ended at ``end``: its changes are stamped with the commit time and taken; the
        position after it, when it had changes of ours (others only move the position when idle)."""
        for table, action, rid, data, _ in self._tx_changes:
            changes.append((table, action, rid, commit_ms, data))
        ours = self._tx_index > 0
        self._tx_changes = []
        self._in_tx = False
        self._boundary = end
        return f"{self._file}:{end}:{_DONE}" if ours else None

    def _statement_table(self, query: str, schema: Any) -> str | None:
        """The captured table a TRUNCATE or a statement-logged change names, if any."""
        match = _STATEMENT.match(query)
        if match is None:
            if _MULTI_TABLE_DELETE.match(query) is None:
                return None
            # DELETE t1, t2 FROM t1 JOIN t2 …: any captured table it names
            default = schema.decode() if isinstance(schema, bytes) else str(schema or "")
            for first, second in re.findall(_NAME, query):
                first, second = first.strip("`"), second.strip("`")
                known = self._tables.get((first, second) if second else (default or self.database, first))
                if known is not None:
                    return known[0]
            return None
        first, second = (part.strip("`") if part else part for part in match.groups())
        default = schema.decode() if isinstance(schema, bytes) else str(schema or "")
        key = (first, second) if second else (default or self.database, first)
        known = self._tables.get(key)
        return None if known is None else known[0]
