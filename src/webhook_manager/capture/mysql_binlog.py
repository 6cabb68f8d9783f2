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
import hashlib
import logging
import queue
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

from webhook_manager.capture.binlog_transactions import (
    Commit,
    Gtid,
    Query,
    Record,
    Rotate,
    Rows,
    TransactionAssembler,
)
from webhook_manager.capture.changes import Batch, Changes
from webhook_manager.capture.position import TransactionPosition
from webhook_manager.capture.source import Prepared
from webhook_manager.capture.spec import CaptureSpec
from webhook_manager.domain.errors import CaptureBusy, CaptureError, first_line

log = logging.getLogger("webhook_manager.capture.mysql")

HEARTBEAT_S = 1.0  # the server sends one this often while idle, so the reader notices a stop
IDLE_POSITION_S = 5.0  # how often an idle source's position moves on
MORE_OF_A_TRANSACTION_S = 0.005
READ_AHEAD = 20_000  # binlog events read ahead of what is handed over
_INTEGER_TYPES = frozenset({"tinyint", "smallint", "mediumint", "int", "integer", "bigint"})
_ACCESS_DENIED = (1045, 1142, 1227, 1044)
_ROWS = {WriteRowsEvent: "insert", UpdateRowsEvent: "update", DeleteRowsEvent: "delete"}
BINLOG_EVENTS = [
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
]
"""The binlog events the capture reads (:func:`record_of` turns each into what the assembler follows)."""


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value or "")


def record_of(event: Any) -> Record | None:
    """The record of a binlog event that :class:`TransactionAssembler` follows (None: a heartbeat)."""
    if isinstance(event, HeartbeatLogEvent):
        return None
    if isinstance(event, RotateEvent):
        return Rotate(event.next_binlog, event.position)
    if isinstance(event, MariadbGtidEvent):
        return Gtid(group=not event.flags & 1)  # flag 1 (FL_STANDALONE): a statement on its own
    if isinstance(event, GtidEvent):
        return Gtid(group=False)  # MySQL writes a BEGIN after it
    end = event.packet.log_pos
    if isinstance(event, XidEvent | XAPrepareEvent):
        return Commit(end, event.timestamp)
    if isinstance(event, QueryEvent):
        return Query(end, event.timestamp, _text(event.query), _text(event.schema))
    return Rows(_ROWS[type(event)], event.schema, event.table, end, event.timestamp, event.rows)


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
        self._row_ids: dict[str, bool] = {}  # by name in events: see row_ids
        self._full_rows = True  # binlog_row_image FULL (or NOBLOB): every change names every column
        self._reader: threading.Thread | None = None
        self._events: queue.Queue[Any] = queue.Queue(maxsize=READ_AHEAD)  # binlog events, or the reader's error
        self._stop = threading.Event()
        self._stream: Any = None
        self._transactions: TransactionAssembler | None = None
        self._last_position_at = 0.0
        self._handed = ""

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
            raise ConnectionError(f"cannot connect to {self.spec.describe()}: {first_line(exc)}") from exc

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
        self._full_rows = str(row_image).upper() in ("FULL", "NOBLOB")
        if self.spec.data == "row" and not self._full_rows:
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
            if column is not None and column not in {c[0] for c in columns}:
                raise CaptureError(f"row_id_columns: table {name!r} has no column {column!r}")
            keys = [(c[0], str(c[1]).lower()) for c in columns if c[2] == "PRI"]
            if column is None and len(keys) == 1 and keys[0][1] in _INTEGER_TYPES:
                column = keys[0][0]
            # the names as the server spells them, which is how the binlog names them
            self._tables[(str(columns[0][3]), str(columns[0][4]))] = (name, column)
            # with a MINIMAL row image, an update's or a delete's before-image holds the key's columns only
            self._row_ids[name] = column is not None and (self._full_rows or column in {k for k, _ in keys})

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
            with contextlib.suppress(Exception):  # already gone with its connection
                self._stream.close()
            self._stream = None
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def current_position(self) -> str:
        """The end of the binlog now: where a new capture starts."""
        try:
            rows = self._query("SHOW MASTER STATUS")
        except pymysql.err.ProgrammingError:  # MySQL 8.4 renamed it
            rows = self._query("SHOW BINARY LOG STATUS")
        if not rows:
            raise CaptureError("binary logging is off on the server: start it with log_bin")
        return str(TransactionPosition(f"{rows[0][0]}:{rows[0][1]}"))

    def setup(self) -> Prepared:
        """Nothing is made on the server: capture starts from the binlog's end now, kept in the store."""
        start = self.current_position()
        return Prepared(
            f"{self.spec.set_up(self.database)} for client {self.spec.client_code}:"
            f" from binlog position {start.rsplit(':', 1)[0]}",
            key=self.key,
            start=start,
        )

    def teardown(self) -> Prepared:
        """Refused while a capture of this source runs; the stored position is forgotten."""
        self.claim()
        return Prepared(
            f"forgot the binlog position of the capture of {', '.join(self.spec.tables)} in {self.database}",
            key=self.key,
            forget=True,
        )

    def claim(self) -> str:
        name = "webhook_manager:" + hashlib.sha1(self.key.encode()).hexdigest()
        [(got,)] = self._query("SELECT GET_LOCK(%s, 0)", (name,))
        if got != 1:
            raise CaptureBusy(f"another process captures {', '.join(self.spec.tables)} of {self.spec.describe()}")
        return self.key

    def row_ids(self) -> dict[str, bool]:
        return dict(self._row_ids)

    def resume(self, position: str | None) -> None:
        if position is None:
            position = self.current_position()
        resumed = TransactionPosition.parse(position)  # "<file>:<offset>:<changes taken>"
        file, _, at = resumed.boundary.rpartition(":")
        offset = int(at)
        on_server = {str(row[0]) for row in self._query("SHOW BINARY LOGS")}
        if file not in on_server:
            raise CaptureError(
                f"the stored binlog position {file}:{offset} is no longer on the server (its binlogs were purged),"
                " so the changes since are lost: run capture mysql … --teardown, then --setup, to start again from"
                " now"
            )
        self._transactions = TransactionAssembler(
            self._tables,
            self.database,
            with_data=self.spec.data == "row",
            resume=resumed,
        )
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
            only_events=BINLOG_EVENTS,
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

    def read(self, limit: int, wait_s: float) -> Batch | None:  # noqa: C901 - see below
        # One loop over the queue of binlog events: waiting, cutting a large transaction and the idle position
        # are its branches, inline as in the PostgreSQL source.
        transactions = self._transactions
        assert transactions is not None, "resume() first"
        changes = Changes()
        position: str | None = None
        deadline = time.monotonic() + wait_s
        waited = False
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                try:
                    if changes or position is not None:
                        if not transactions.in_transaction or waited:
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
            record = record_of(event)
            ended = None if record is None else transactions.take(record, changes)
            if ended is not None:
                position = ended
                waited = False
                if len(changes) >= limit:
                    break
            elif transactions.in_transaction and transactions.held >= limit:
                position = transactions.cut(changes)
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
        transactions = self._transactions
        assert transactions is not None
        if transactions.in_transaction or time.monotonic() - self._last_position_at < IDLE_POSITION_S:
            return None
        position = transactions.here()
        self._last_position_at = time.monotonic()
        if position == self._handed:
            return None
        self._handed = position
        return Batch(Changes(), position)

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
