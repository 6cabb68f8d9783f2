"""(r) the raw read of the changes (a) captured, in the same run, once the capture has stopped: what merely
reading them from the source costs, to set the captured rate against.

- postgres-logical: a second pgoutput slot on the same publication, made before the UPDATE, read with
  ``read_message()`` until the COMMIT (no decoding on the client; the server still decodes the WAL);
- sqlite and postgres-trigger: a copy of the application database taken after set-up (a file backup;
  ``CREATE DATABASE … TEMPLATE``) is given the same UPDATE with no capture, then its outbox is read with the
  capture's own SELECT columns, OUTBOX_PAGE rows per page, without stamping, converting, recording or deleting;
- mysql: a bare ``BinLogStreamReader`` from the binlog position noted just before the UPDATE, decoding its row
  events (``event.rows``) up to the XID event that commits them.

:class:`RawRead` has a step for each moment (a) gives it: before the capture starts, before the UPDATE, and after.
"""

from __future__ import annotations

import sqlite3
import time
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.extras
import pymysql
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import XidEvent
from pymysqlreplication.row_event import UpdateRowsEvent

from bench.harness.databases import mysql_settings, pg_connect, pg_execute
from bench.harness.limits import BenchError
from bench.harness.report import log
from bench.harness.service import TABLE
from bench.scenarios.capture.apps import App, MysqlApp, PostgresApp, SqliteApp
from bench.scenarios.capture.context import APP_PREFIX, Context

RAW_NAP_S = 0.005  # the bare slot reader's pause when no message is buffered
OUTBOX_PAGE = 20_000  # rows per SELECT of the bare outbox read: the capture's BATCH_LIMIT
SQLITE_OUTBOX = "webhook_manager_outbox"
SQLITE_OUTBOX_COLUMNS = "id, table_name, action, row_id, data, changed_at"  # as SqliteSource._read selects them
PG_OUTBOX_COLUMNS = "id, table_name, action, row_id, data::text, (extract(epoch FROM changed_at) * 1000)::bigint"
RAW_SERVER_ID = 4_000_000_000  # + a random part: the bare binlog reader's replica id (the capture's is < 1.001e9)


class RawRead:
    """(r) for one source of run (a), whose application database is ``app`` and capture slot ``slot``."""

    def __init__(self, ctx: Context, source: str, app: App, slot: str, label: str) -> None:
        self.ctx = ctx
        self.source = source
        self.app = app
        self.slot = slot
        self.label = label
        self.copy: App | None = None
        self.binlog_start: tuple[str, int] | None = None

    def before_capture(self) -> None:
        """The copy for the bare read of an outbox, taken before anything more happens in the application database."""
        if isinstance(self.app, SqliteApp):
            self.copy = SqliteApp(self.ctx.workdir / "app-a-copy.db")
            self.app.conn.backup(self.copy.conn)
        elif self.source == "postgres-trigger":
            assert isinstance(self.app, PostgresApp)
            self.app.close()  # a template database must have no session
            template = urllib.parse.urlsplit(self.app.url).path.lstrip("/")
            copy_url, _ = self.ctx.res.databases.create(self.ctx.options.postgres_url, APP_PREFIX, template)
            self.copy = PostgresApp(copy_url)
            self.app.reopen()

    def before_update(self) -> None:
        """The raw slot (on the same publication) or the binlog position, just before the UPDATE."""
        if self.source == "postgres-logical":
            pg_execute(self.app.url, "SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (self.raw_slot,))
        if isinstance(self.app, MysqlApp):
            self.binlog_start = self.app.binlog_end()

    @property
    def raw_slot(self) -> str:
        return self.slot + "_raw"

    def read(self, rows: int) -> dict[str, Any]:
        """The bare read, with the capture stopped: ``raw_what``, ``raw_changes``, ``raw_s``, ``raw_per_s`` …"""
        if self.source == "postgres-logical":
            return raw_read_slot(self.ctx, self.app.url, self.raw_slot, self.slot, rows, self.label)
        if self.binlog_start is not None:
            return raw_read_binlog(self.ctx, self.app.url, self.binlog_start, rows, self.label)
        assert self.copy is not None
        return raw_read_outbox(self.ctx, self.copy, self.slot, rows, self.label)

    def close(self) -> None:
        if self.copy is not None:
            self.copy.close()


def raw_read_slot(ctx: Context, url: str, raw_slot: str, publication: str, rows: int, label: str) -> dict[str, Any]:
    """Stream the raw slot from the start until the COMMIT of a transaction with changes; count, do not decode."""
    log(f"({label}) bare read of slot {raw_slot}")
    conn = pg_connect(url, connection_factory=psycopg2.extras.LogicalReplicationConnection)
    try:
        cursor = conn.cursor()
        started = time.monotonic()
        cursor.start_replication(
            slot_name=raw_slot, decode=False, options={"proto_version": "1", "publication_names": publication}
        )
        messages = changes = 0
        first: float | None = None
        last_message = time.monotonic()
        while True:
            message = cursor.read_message()
            if message is None:
                now = time.monotonic()
                if now - last_message > ctx.options.stall:
                    raise BenchError(f"({label}) bare slot read: no message for {ctx.options.stall:g} s")
                ctx.deadline.check(f"({label}) reading the raw slot")
                # Not select(): waking on every message the walsender sends (one send() each) makes both sides
                # trade the two cores and halves the rate; a 5 ms nap lets the socket fill, as a busy reader does.
                time.sleep(RAW_NAP_S)
                continue
            last_message = time.monotonic()
            if first is None:
                first = last_message
            messages += 1
            tag = message.payload[0]
            if tag in (0x49, 0x55, 0x44):  # I, U, D
                changes += 1
            elif tag == 0x43 and changes:  # C of the transaction with the changes
                break
        elapsed = time.monotonic() - started
    finally:
        conn.close()
    # The walsender ends with the connection; the slot can be dropped once it is no longer active.
    give_up = time.monotonic() + 30
    while time.monotonic() < give_up:
        try:
            pg_execute(url, "SELECT pg_drop_replication_slot(%s)", (raw_slot,))
            break
        except psycopg2.Error:
            time.sleep(0.1)
    if changes != rows:
        log(f"({label}) warning: the raw slot held {changes:,} changes, not {rows:,}")
    return {
        "raw_what": "pgoutput messages read from a second slot (read_message until COMMIT, not decoded)",
        "raw_changes": changes,
        "raw_messages": messages,
        "raw_s": elapsed,
        "raw_first_after_s": None if first is None else first - started,
        "raw_per_s": changes / elapsed,
    }


def raw_read_binlog(ctx: Context, url: str, start: tuple[str, int], rows: int, label: str) -> dict[str, Any]:
    """(r) for mysql: a bare BinLogStreamReader from the binlog position noted just before the UPDATE, as the
    capture's reader but with nothing else: it decodes the UPDATE's row events (``event.rows`` parses every row
    of an event) and stops at the XID event that commits them. This is the library's own cost of reading the
    changes (the server sending them, PyMySQL's packets, the row parsing), without the capture's thread, queue,
    positions, conversion to changes and store."""
    log(f"({label}) bare read of the binlog from {start[0]}:{start[1]}")
    schema = urllib.parse.unquote(urllib.parse.urlsplit(url).path.lstrip("/"))
    changes = events = 0
    stream = BinLogStreamReader(
        connection_settings=mysql_settings(url),
        server_id=RAW_SERVER_ID + uuid.uuid4().int % 100_000_000,
        log_file=start[0],
        log_pos=start[1],
        resume_stream=True,
        blocking=False,  # the server ends the stream at the binlog's end
        is_mariadb=False,  # file/offset positions (with True, MariaDB is read from GTIDs)
        only_events=[UpdateRowsEvent, XidEvent],
        only_schemas=[schema],
        only_tables=[TABLE],
    )
    try:
        started = time.monotonic()
        committed = False
        for event in stream:
            if isinstance(event, UpdateRowsEvent):
                if event.schema == schema and event.table == TABLE:
                    events += 1
                    changes += len(event.rows)
            elif changes:  # the XID event of the transaction with the rows
                committed = True
                break
            if events % 100 == 0:
                ctx.deadline.check(f"({label}) reading the binlog")
        elapsed = time.monotonic() - started
    except pymysql.MySQLError as exc:
        raise BenchError(f"({label}) bare binlog read: {exc}") from exc
    finally:
        stream.close()
    if changes != rows or not committed:
        after = "" if committed else " and no XID event after them"
        log(f"({label}) warning: the binlog held {changes:,} update rows{after}")
    return {
        "raw_what": "BinLogStreamReader from the position before the UPDATE, event.rows decoded, until its XID",
        "raw_changes": changes,
        "raw_messages": events,
        "raw_s": elapsed,
        "raw_per_s": changes / elapsed,
    }


def read_pages(fetch: Callable[[int], list[tuple[Any, ...]]]) -> tuple[int, float]:
    """Read an outbox page after page (``fetch(last_id)``: the next page's rows, id first) until one is empty:
    (rows read, seconds)."""
    read = last_id = 0
    started = time.monotonic()
    while True:
        page = fetch(last_id)
        if not page:
            return read, time.monotonic() - started
        read += len(page)
        last_id = page[-1][0]


def raw_read_outbox(ctx: Context, copy: App, slot: str, rows: int, label: str) -> dict[str, Any]:
    """On the copy taken after set-up, the same UPDATE (no capture running), then the outbox read in pages with
    the capture's SELECT columns: what reading costs before stamping, converting, recording and deleting."""
    log(f"({label}) bare read: the same UPDATE on a copy, then SELECT of its outbox")
    copy.transaction(f"UPDATE {TABLE} SET price = price + 1")
    if isinstance(copy, SqliteApp):
        conn = sqlite3.connect(copy.path, isolation_level=None)
        query = f"SELECT {SQLITE_OUTBOX_COLUMNS} FROM {SQLITE_OUTBOX} WHERE id > ? ORDER BY id LIMIT ?"
        try:
            read, elapsed = read_pages(lambda last_id: conn.execute(query, (last_id, OUTBOX_PAGE)).fetchall())
        finally:
            conn.close()
        what = f"SELECT of the outbox rows of a copy of the file, {OUTBOX_PAGE:,} per page"
    else:
        pg = pg_connect(copy.url)
        try:
            pg.autocommit = True
            outbox = f"{psycopg2.extensions.quote_ident(slot, pg)}.outbox"
            query = f"SELECT {PG_OUTBOX_COLUMNS} FROM {outbox} WHERE id > %s ORDER BY id LIMIT %s"
            with pg.cursor() as cur:

                def fetch(last_id: int) -> list[tuple[Any, ...]]:
                    cur.execute(query, (last_id, OUTBOX_PAGE))
                    return list(cur.fetchall())

                read, elapsed = read_pages(fetch)
        finally:
            pg.close()
        what = f"SELECT of the outbox rows of a copy of the database (TEMPLATE), {OUTBOX_PAGE:,} per page"
    if read != rows:
        log(f"({label}) warning: the copy's outbox held {read:,} rows, not {rows:,}")
    return {"raw_what": what, "raw_changes": read, "raw_s": elapsed, "raw_per_s": read / elapsed}
