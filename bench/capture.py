"""Benchmark of database change capture: changes/s captured from one big UPDATE, and commit→webhook latency.

Run from the checkout with the project's virtualenv::

    .venv/bin/python bench/capture.py [--sources sqlite,postgres-logical,postgres-trigger,mysql] [--quick]
    .venv/bin/python bench/capture.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

For each source (``sqlite``: triggers and an outbox in the application's file; ``postgres-logical``: a replication
slot decoded by pgoutput; ``postgres-trigger``: statement triggers and an outbox; ``mysql``: the row-based binlog
of MySQL/MariaDB read as a replica reads it, with mysql-replication), on fresh application databases (SQLite files
in a temporary folder, or databases ``wm_bench_capture_<random>`` on the server ``--postgres-url`` or, for mysql,
``--mysql-url`` names) and a fresh store per part (a temporary SQLite file, or with ``--database-url
postgresql://…`` a database ``wm_bench_capture_store_<random>`` on that server), it measures:

(a) throughput: a table ``product (id integer primary key, name text, price real)`` filled with ``--rows`` rows
    before the capture is set up, a configuration for (product, update), and the real ``webhook-manager capture …``
    command running alone (no ``serve``: nothing else competes for the store). ONE ``UPDATE product SET price =
    price + 1`` is committed; changes/s = rows / (time from the commit's return to the moment the store holds all
    of its update events, polled every 5 ms as the sum of ``event_count`` of ``event_bundles``).
(r) the raw read of the same changes, in the same run, after (a): for postgres-logical a second pgoutput slot on
    the same publication, made before the UPDATE and read afterwards with ``read_message()`` until the COMMIT (no
    decoding on the client; the server still decodes the WAL); for sqlite and postgres-trigger a copy of the
    application database taken after set-up (a file backup; ``CREATE DATABASE … TEMPLATE``), on which the same
    UPDATE is run with no capture, then its outbox is read with the capture's own SELECT columns, 20 000 rows per
    page (the capture's batch size), without stamping, converting, recording or deleting anything; for mysql a
    bare ``pymysqlreplication.BinLogStreamReader`` from the binlog position noted just before the UPDATE, reading
    its row events (``event.rows`` touched, so every row is decoded) up to its XID event: what the library's
    parsing alone costs, without the capture's thread, queue, bookkeeping, conversion and store.
(c) latency: ``webhook-manager serve --config FILE`` with a ``[[capture]]`` section for the source (data = "none"),
    a configuration for (product, insert) pointing to a bench receiver (bench/receiver.py's server, in a process
    of its own, noting the receipt time of every rowId), and an application writer inserting ``--rate`` rows/s
    (``--per-transaction`` rows per transaction) for ``--seconds``; commit→receipt per row is the receiver's
    ``time.time()`` at receipt minus the writer's ``time.time()`` after the commit returned.

The issue's targets: >= 50 000 changes/s captured (mysql: >= 30 000); p99 <= 100 ms. Every wait is bounded
(``--timeout``, ``--stall``); subprocesses, the receiver, replication slots and databases are removed on exit, also
on errors and on SIGTERM. Progress goes to stderr; figures to stdout, ending with a table and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import multiprocessing
import os
import platform
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, cast

import orjson
import psycopg2
import psycopg2.extensions
import psycopg2.extras
import pymysql
import uvloop
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import XidEvent
from pymysqlreplication.row_event import UpdateRowsEvent

if __package__ in (None, ""):  # run as a script: make the checkout importable for `bench.receiver`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import receiver
from bench.common import (
    BenchError,
    Deadline,
    cpu_seconds,
    database_url_for,
    die_with_parent,
    free_port,
    log,
    out,
    redact,
    verdict,
)
from webhook_manager.domain.ids import new_id
from webhook_manager.domain.model import Action, Configuration
from webhook_manager.store import migrated_store
from webhook_manager.domain.timefmt import now_ms

HOST = "127.0.0.1"
CLIENT_CODE = "100"
USERNAME = "bench"
PASSWORD = "bench-password-0123456789"
SECRET = "mySecretWord"
TABLE = "product"
SOURCES = ("sqlite", "postgres-logical", "postgres-trigger", "mysql")
TARGET_CHANGES_PER_S = 50_000.0
TARGET_CHANGES_PER_S_OF = {"mysql": 30_000.0}  # the issue's target where it differs from TARGET_CHANGES_PER_S
TARGET_P99_MS = 100.0
STORE_POLL_S = 0.005  # how often (a) asks the store how many events it holds
RAW_NAP_S = 0.005  # the bare slot reader's pause when no message is buffered
OUTBOX_PAGE = 20_000  # rows per SELECT of the bare outbox read: the capture's BATCH_LIMIT
WARMUP_ROW_ID = 999_999_999  # (c) the row inserted first, to know the whole path runs before the clock starts
STOP_GRACE_S = 15.0
SQLITE_OUTBOX = "webhook_manager_outbox"
SQLITE_OUTBOX_COLUMNS = "id, table_name, action, row_id, data, changed_at"  # as SqliteSource._read selects them
PG_OUTBOX_COLUMNS = "id, table_name, action, row_id, data::text, (extract(epoch FROM changed_at) * 1000)::bigint"
DEAD_ENDPOINT = "http://127.0.0.1:9/unused"  # (a) runs no serve: nothing is ever sent there
RAW_SERVER_ID = 4_000_000_000  # + a random part: the bare binlog reader's replica id (the capture's is < 1.001e9)
MYSQL_SERVER_NAMES = (b"mariadbd", b"mysqld")  # the local server process, for its CPU time


def target_changes_per_s(source: str) -> float:
    return TARGET_CHANGES_PER_S_OF.get(source, TARGET_CHANGES_PER_S)


# --------------------------------------------------------------------------------------------------- settings


@dataclass
class Options:
    sources: list[str]
    rows: int
    seconds: float
    rate: int
    per_transaction: int
    database_url: str | None
    postgres_url: str
    mysql_url: str
    timeout: float
    stall: float
    keep: bool
    quick: bool


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="bench/capture.py",
        description="Benchmark of database change capture (see the module docstring).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--sources", default=",".join(SOURCES), help="which sources, comma-separated")
    parser.add_argument(
        "--rows", type=int, default=None, help="(a) rows of the one UPDATE (default 200000; 50000 quick)"
    )
    parser.add_argument("--seconds", type=float, default=None, help="(c) how long to write (default 10; 3 quick)")
    parser.add_argument("--rate", type=int, default=1_000, help="(c) rows inserted per second")
    parser.add_argument("--per-transaction", type=int, default=10, help="(c) rows per transaction")
    parser.add_argument(
        "--database-url",
        default=None,
        help="the store: a postgresql:// URL names the server (and the database to connect to) on which each part"
        " gets a fresh database; default: a fresh temporary SQLite file per part",
    )
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="server (and database to connect to) of the PostgreSQL application databases; needs wal_level=logical"
        " and a role allowed to replicate for postgres-logical",
    )
    parser.add_argument(
        "--mysql-url",
        default="mysql://root@127.0.0.1:3306",
        help="server of the MySQL/MariaDB application databases (mysql source); needs a ROW binlog with"
        " binlog_row_metadata=FULL and a user allowed to create databases and read the binlog",
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="global deadline, seconds")
    parser.add_argument("--stall", type=float, default=60.0, help="give up on a wait when nothing moves this long")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (SQLite files, logs)")
    parser.add_argument("--quick", action="store_true", help="50 000 rows and 3 s (smoke run)")
    args = parser.parse_args(argv)
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    unknown = [s for s in sources if s not in SOURCES]
    if unknown or not sources:
        parser.error(f"--sources takes some of {','.join(SOURCES)}, not {args.sources!r}")
    if args.database_url is not None and not is_postgres(args.database_url):
        parser.error("--database-url takes a postgresql:// URL (the default store is a fresh SQLite file per part)")
    if not is_postgres(args.postgres_url):
        parser.error("--postgres-url takes a postgresql:// URL")
    if not is_mysql(args.mysql_url):
        parser.error("--mysql-url takes a mysql:// URL")
    options = Options(
        sources=sources,
        rows=args.rows if args.rows is not None else (50_000 if args.quick else 200_000),
        seconds=args.seconds if args.seconds is not None else (3.0 if args.quick else 10.0),
        rate=args.rate,
        per_transaction=args.per_transaction,
        database_url=args.database_url,
        postgres_url=args.postgres_url,
        mysql_url=args.mysql_url,
        timeout=args.timeout,
        stall=args.stall,
        keep=args.keep,
        quick=args.quick,
    )
    if options.rows < 1 or options.rate < 1 or options.per_transaction < 1 or options.seconds <= 0:
        parser.error("--rows, --rate, --per-transaction and --seconds must be positive")
    return options


def is_postgres(url: str | None) -> bool:
    return url is not None and url.startswith(("postgresql://", "postgres://"))


def is_mysql(url: str | None) -> bool:
    return url is not None and url.startswith(("mysql://", "mariadb://"))


# ------------------------------------------------------------------------------------------------- processes


def cpu_sum(pids: list[int]) -> float | None:
    values = [cpu_seconds(pid) for pid in pids]
    return None if not pids or any(v is None for v in values) else sum(cast(list[float], values))


class Child:
    """A ``webhook-manager`` process of the bench, its output in a log file of its own."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "wb") as log_file:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def exited(self) -> str | None:
        """``<name> exited with status N: <its log's tail>`` once it has exited, else None."""
        status = None if self.process is None else self.process.poll()
        return None if status is None else f"{self.name} exited with status {status}: {self.log_tail()}"

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text[-lines:] if line.strip())

    def problems(self) -> list[str]:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []
        return [line.strip() for line in text if re.search(r"\b(WARNING|ERROR|CRITICAL)\b|^Traceback", line)]

    def stop(self) -> None:
        """SIGTERM, STOP_GRACE_S to end, then SIGKILL."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            log(f"{self.name}: no exit {STOP_GRACE_S:g} s after SIGTERM; killing it")
            process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)


# ---------------------------------------------------------------------------- the receiver, with rowId times

_ROW_ID = re.compile(rb'"rowId"\s*:\s*(\d+)')


class RowCounters(receiver.Counters):
    """bench/receiver.py's counters, plus the receipt time (``time.time()``) of every rowId while latency is on."""

    def reset(self, *, latency: bool) -> None:
        super().reset(latency=latency)
        self.row_ids = array("q")
        self.row_times = array("d")

    def webhook(self, body: bytes, now: float) -> None:
        super().webhook(body, now)
        if self.latency_on:
            for row_id in _ROW_ID.findall(body):
                self.row_ids.append(int(row_id))
                self.row_times.append(now)


class RowReceiverProtocol(receiver.ReceiverProtocol):
    """bench/receiver.py's server, plus ``GET /rows``: ``{"ids": [...], "times": [...]}`` in receipt order."""

    def _control(self, head: bytes, keep_alive: bool) -> bytes:
        if head.startswith(b"GET /rows "):
            counters = cast(RowCounters, self._counters)
            body = orjson.dumps({"ids": counters.row_ids.tolist(), "times": counters.row_times.tolist()})
            connection = b"" if keep_alive else b"Connection: close\r\n"
            return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s" % (
                len(body),
                connection,
                body,
            )
        return super()._control(head, keep_alive)


async def _serve_rows(conn: Connection, parent_pid: int) -> None:
    loop = asyncio.get_running_loop()
    counters = RowCounters()
    server = await loop.create_server(lambda: RowReceiverProtocol(counters), HOST, 0, backlog=4096)
    conn.send(server.sockets[0].getsockname()[1])
    conn.close()
    async with server:
        while os.getppid() == parent_pid:
            await asyncio.sleep(0.5)


def _receiver_child(conn: Connection, parent_pid: int) -> None:
    uvloop.run(_serve_rows(conn, parent_pid))


def start_receiver(timeout: float = 10.0) -> tuple[BaseProcess, int]:
    """The receiver in a process of its own (ends with the bench); returns it and its port."""
    context = multiprocessing.get_context("spawn")
    parent_end, child_end = context.Pipe(duplex=False)
    process = context.Process(target=_receiver_child, args=(child_end, os.getpid()), name="bench-receiver", daemon=True)
    process.start()
    child_end.close()
    try:
        if not parent_end.poll(timeout):
            receiver.stop(process)
            raise BenchError(f"the receiver did not start listening within {timeout:g} s")
        port = int(parent_end.recv())
    finally:
        parent_end.close()
    return process, port


def receiver_rows(port: int) -> tuple[list[int], list[float]]:
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        connection.request("GET", "/rows")
        doc = orjson.loads(connection.getresponse().read())
    finally:
        connection.close()
    return list(doc["ids"]), list(doc["times"])


# -------------------------------------------------------------------------------------------------- cleanup


@dataclass
class Resources:
    """Everything the bench started or created, to stop or drop on any exit."""

    children: list[Child] = field(default_factory=list)
    receivers: list[BaseProcess] = field(default_factory=list)
    databases: dict[str, str] = field(default_factory=dict)  # name → admin URL (postgresql:// or mysql://)

    def cleanup(self) -> None:
        for child in self.children:
            with contextlib.suppress(Exception):
                child.stop()
        for process in self.receivers:
            with contextlib.suppress(Exception):
                receiver.stop(process)
        for name in list(self.databases):
            drop_database(self, name)


def pg_connect(url: str, **kwargs: Any) -> Any:
    """A psycopg2 connection, bounded: 10 s to connect, 10 minutes per statement."""
    try:
        return psycopg2.connect(url, connect_timeout=10, options="-c statement_timeout=600000", **kwargs)
    except psycopg2.Error as exc:
        raise BenchError(f"cannot connect to {redact(url)}: {str(exc).strip().splitlines()[0]}") from exc


def admin_execute(admin_url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """One statement on an autocommit connection of its own; its rows (if any)."""
    conn = pg_connect(admin_url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return list(cur.fetchall()) if cur.description else []
    finally:
        conn.close()


def create_database(res: Resources, admin_url: str, prefix: str, template: str | None = None) -> tuple[str, str]:
    """A fresh database ``<prefix><random>`` on the server of ``admin_url``: (its URL, its name)."""
    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    res.databases[name] = admin_url  # before CREATE: dropped on exit whatever happens from here
    statement = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
    try:
        admin_execute(admin_url, statement)
    except psycopg2.Error as exc:
        raise BenchError(f"cannot create database {name}: {str(exc).strip().splitlines()[0]}") from exc
    return database_url_for(admin_url, name), name


def drop_database(res: Resources, name: str) -> None:
    """End the database's sessions (walsenders included), drop its replication slots, drop it. Logs, never raises."""
    admin_url = res.databases.get(name)
    if admin_url is None:
        return
    if is_mysql(admin_url):
        drop_mysql_database(res, name)
        return
    try:
        conn = pg_connect(admin_url)
    except BenchError as exc:
        log(f"database {name} may be left behind: {exc}")
        return
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            give_up = time.monotonic() + 30
            while True:
                cur.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
                    " AND pid <> pg_backend_pid()",
                    (name,),
                )
                cur.execute("SELECT slot_name, active_pid FROM pg_replication_slots WHERE database = %s", (name,))
                slots = cur.fetchall()
                for slot, active_pid in slots:
                    if active_pid is None:
                        with contextlib.suppress(psycopg2.Error):
                            cur.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
                cur.execute("SELECT count(*) FROM pg_replication_slots WHERE database = %s", (name,))
                if cur.fetchone()[0] == 0 or time.monotonic() > give_up:
                    break
                time.sleep(0.1)
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        del res.databases[name]
        log(f"dropped database {name}")
    except psycopg2.Error as exc:
        log(
            f"could not drop database {name}: {str(exc).strip().splitlines()[0]}; drop its replication slots"
            f" (pg_replication_slots) and then DROP DATABASE {name} WITH (FORCE)"
        )
    finally:
        conn.close()


def mysql_connect(url: str) -> pymysql.connections.Connection[Any]:
    """A PyMySQL connection to the server (and database, if any) of a mysql:// URL; not autocommit; bounded:
    10 s to connect, 10 minutes per read or write."""
    parts = urllib.parse.urlsplit(url)
    try:
        return pymysql.connect(
            host=parts.hostname or HOST,
            port=parts.port or 3306,
            user=urllib.parse.unquote(parts.username or "root"),
            password=urllib.parse.unquote(parts.password or ""),
            database=urllib.parse.unquote(parts.path.lstrip("/")) or None,
            charset="utf8mb4",
            connect_timeout=10,
            read_timeout=600,
            write_timeout=600,
        )
    except pymysql.MySQLError as exc:
        raise BenchError(f"cannot connect to {redact(url)}: {exc}") from exc


def mysql_settings(url: str) -> dict[str, Any]:
    """``connection_settings`` of a BinLogStreamReader for the server of a mysql:// URL."""
    parts = urllib.parse.urlsplit(url)
    return {
        "host": parts.hostname or HOST,
        "port": parts.port or 3306,
        "user": urllib.parse.unquote(parts.username or "root"),
        "passwd": urllib.parse.unquote(parts.password or ""),
    }


def mysql_execute(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """One statement on an autocommit connection of its own; its rows (if any)."""
    conn = mysql_connect(url)
    try:
        conn.autocommit(True)
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return list(cur.fetchall())
    finally:
        conn.close()


def create_mysql_database(res: Resources, admin_url: str, prefix: str) -> tuple[str, str]:
    """A fresh database ``<prefix><random>`` on the MySQL/MariaDB server of ``admin_url``: (its URL, its name)."""
    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    res.databases[name] = admin_url  # before CREATE: dropped on exit whatever happens from here
    try:
        mysql_execute(admin_url, f"CREATE DATABASE `{name}`")
    except pymysql.MySQLError as exc:
        raise BenchError(f"cannot create database {name}: {exc}") from exc
    return database_url_for(admin_url, name), name


def drop_mysql_database(res: Resources, name: str) -> None:
    """End the database's sessions, drop it (waiting at most 30 s for its locks). Logs, never raises."""
    admin_url = res.databases[name]
    try:
        conn = mysql_connect(admin_url)
    except BenchError as exc:
        log(f"database {name} may be left behind: {exc}")
        return
    try:
        conn.autocommit(True)
        with conn.cursor() as cur:
            cur.execute("SET SESSION lock_wait_timeout = 30")
            cur.execute(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND ID <> CONNECTION_ID()", (name,)
            )
            for (session,) in cur.fetchall():
                with contextlib.suppress(pymysql.MySQLError):
                    cur.execute(f"KILL {int(session)}")
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        del res.databases[name]
        log(f"dropped database {name}")
    except pymysql.MySQLError as exc:
        log(f"could not drop database {name}: {exc}; DROP DATABASE `{name}` on {redact(admin_url)}")
    finally:
        conn.close()


# ------------------------------------------------------------------------------------ application databases


class SqliteApp:
    """The application's SQLite file, in WAL mode (the usual choice with a second, reading connection)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = str(path)
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA busy_timeout = 10000")

    def create(self, rows: int) -> None:
        self.conn.execute(f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
        if rows < 1:
            return
        self.conn.execute("BEGIN")
        self.conn.execute(
            f"WITH RECURSIVE g (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?)"
            f" INSERT INTO {TABLE} (id, name, price) SELECT n, 'product ' || n, n * 0.01 FROM g",
            (rows,),
        )
        self.conn.execute("COMMIT")

    def transaction(self, statement: str) -> float:
        """Run one statement in a transaction of its own; ``time.monotonic()`` once COMMIT has returned."""
        self.conn.execute("BEGIN")
        self.conn.execute(statement)
        self.conn.execute("COMMIT")
        return time.monotonic()

    def insert(self, ids: list[int]) -> float:
        """Insert rows in one transaction; ``time.time()`` once COMMIT has returned."""
        self.conn.execute("BEGIN")
        self.conn.executemany(
            f"INSERT INTO {TABLE} (id, name, price) VALUES (?, ?, ?)", [(i, f"product {i}", 1.0) for i in ids]
        )
        self.conn.execute("COMMIT")
        return time.time()

    def close(self) -> None:
        self.conn.close()


class PostgresApp:
    """An application database on PostgreSQL, written through psycopg2 (one connection, explicit commits)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: Any = None
        self.reopen()

    def reopen(self) -> None:
        self.close()
        self.conn = pg_connect(self.url)

    def create(self, rows: int) -> None:
        with self.conn.cursor() as cur:
            cur.execute(f"CREATE TABLE {TABLE} (id integer PRIMARY KEY, name text, price real)")
            cur.execute(
                f"INSERT INTO {TABLE} (id, name, price) SELECT g, 'product ' || g, g * 0.01"
                " FROM generate_series(1, %s) AS g",
                (rows,),
            )
        self.conn.commit()

    def transaction(self, statement: str) -> float:
        with self.conn.cursor() as cur:
            cur.execute(statement)
        self.conn.commit()
        return time.monotonic()

    def insert(self, ids: list[int]) -> float:
        with self.conn.cursor() as cur:
            psycopg2.extras.execute_values(
                cur, f"INSERT INTO {TABLE} (id, name, price) VALUES %s", [(i, f"product {i}", 1.0) for i in ids]
            )
        self.conn.commit()
        return time.time()

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(psycopg2.Error):
                self.conn.close()
            self.conn = None


class MysqlApp:
    """An application database on MySQL/MariaDB, written through PyMySQL (one connection, explicit commits)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn = mysql_connect(url)

    def create(self, rows: int) -> None:
        with self.conn.cursor() as cur:
            cur.execute(f"CREATE TABLE {TABLE} (id integer PRIMARY KEY, name varchar(100), price double) ENGINE=InnoDB")
            if rows >= 1:
                try:  # MariaDB's sequence engine: seq_1_to_N is a table of 1 … N
                    cur.execute(
                        f"INSERT INTO {TABLE} (id, name, price) SELECT seq, concat('product ', seq), seq * 0.01"
                        f" FROM seq_1_to_{int(rows)}"
                    )
                except pymysql.err.ProgrammingError as exc:
                    raise BenchError(f"filling {TABLE} needs MariaDB's sequence engine (seq_1_to_N): {exc}") from exc
        self.conn.commit()

    def binlog_end(self) -> tuple[str, int]:
        """The binlog's current file and offset."""
        with self.conn.cursor() as cur:
            cur.execute("SHOW MASTER STATUS")
            row = cur.fetchone()
        self.conn.commit()
        if row is None:
            raise BenchError("the MySQL/MariaDB server writes no binlog (log_bin is off)")
        return str(row[0]), int(row[1])

    def transaction(self, statement: str) -> float:
        with self.conn.cursor() as cur:
            cur.execute(statement)
        self.conn.commit()
        return time.monotonic()

    def insert(self, ids: list[int]) -> float:
        with self.conn.cursor() as cur:
            cur.executemany(  # PyMySQL sends one multi-row INSERT
                f"INSERT INTO {TABLE} (id, name, price) VALUES (%s, %s, %s)", [(i, f"product {i}", 1.0) for i in ids]
            )
        self.conn.commit()
        return time.time()

    def close(self) -> None:
        with contextlib.suppress(pymysql.MySQLError):
            self.conn.close()


App = SqliteApp | PostgresApp | MysqlApp


class StoreReader:
    """How many events of (product, action) the store holds: the sum of ``event_count`` of its bundles."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite: sqlite3.Connection | None = None
        self.pg: Any = None
        if is_postgres(url):
            self.pg = pg_connect(url)
            self.pg.autocommit = True
        else:
            self.sqlite = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
            self.sqlite.execute("PRAGMA busy_timeout = 10000")

    def count(self, action: str) -> int:
        query = "SELECT coalesce(sum(event_count), 0) FROM event_bundles WHERE table_name = {p} AND action = {p}"
        if self.sqlite is not None:
            return int(self.sqlite.execute(query.format(p="?"), (TABLE, action)).fetchone()[0])
        with self.pg.cursor() as cur:
            cur.execute(query.format(p="%s"), (TABLE, action))
            return int(cur.fetchone()[0])

    def close(self) -> None:
        if self.sqlite is not None:
            self.sqlite.close()
        if self.pg is not None:
            with contextlib.suppress(psycopg2.Error):
                self.pg.close()


# ------------------------------------------------------------------------------------------------- the bench


@dataclass
class Context:
    options: Options
    deadline: Deadline
    exe: Path
    workdir: Path
    res: Resources
    receiver_port: int = 0
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOK_MANAGER_")}
        env["WEBHOOK_MANAGER_LOG_LEVEL"] = "info"
        return env


def new_app(ctx: Context, source: str, label: str) -> App:
    if source == "sqlite":
        return SqliteApp(ctx.workdir / f"app-{label}.db")
    if source == "mysql":
        url, _ = create_mysql_database(ctx.res, ctx.options.mysql_url, "wm_bench_capture_")
        return MysqlApp(url)
    url, _ = create_database(ctx.res, ctx.options.postgres_url, "wm_bench_capture_")
    return PostgresApp(url)


def new_store(ctx: Context, label: str) -> str:
    """A fresh store, migrated, with the bench's client and user (``webhook-manager account create``)."""
    if ctx.options.database_url is None:
        url = f"sqlite:///{ctx.workdir / f'store-{label}.db'}"
    else:
        url, _ = create_database(ctx.res, ctx.options.database_url, "wm_bench_capture_store_")
    command = [str(ctx.exe), "account", "create", "--client-code", CLIENT_CODE, "--username", USERNAME]
    done = run_command(ctx, [*command, "--password-stdin"], url, f"({label}) account create", stdin=PASSWORD + "\n")
    if done.returncode != 0:
        raise BenchError(f"({label}) `webhook-manager account create` failed: {output_tail(done)}")
    return url


def add_configuration(ctx: Context, store_url: str, action: str, endpoint: str) -> None:
    """A configuration (product, action) → endpoint, straight through the store's API."""

    async def go() -> None:
        async with migrated_store(store_url) as store:
            now = now_ms()
            await store.create_configuration(
                Configuration(new_id(), CLIENT_CODE, TABLE, Action(action), endpoint, SECRET, False, now, now)
            )

    asyncio.run(asyncio.wait_for(go(), timeout=max(1.0, min(60.0, ctx.deadline.remaining()))))


def output_tail(done: subprocess.CompletedProcess[bytes]) -> str:
    lines = (done.stderr + done.stdout).decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else f"exit status {done.returncode}"


def run_command(
    ctx: Context, command: list[str], store_url: str, what: str, stdin: str = ""
) -> subprocess.CompletedProcess[bytes]:
    env = {**ctx.base_env, "WEBHOOK_MANAGER_DATABASE_URL": store_url}
    try:
        return subprocess.run(
            command,
            input=stdin.encode(),
            env=env,
            capture_output=True,
            timeout=max(1.0, min(300.0, ctx.deadline.remaining())),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{what} took over {exc.timeout:g} s") from exc


def capture_command(ctx: Context, source: str, app: App, slot: str) -> list[str]:
    """``webhook-manager capture …`` for the source (without --setup)."""
    common = ["--client-code", CLIENT_CODE, "--tables", TABLE]
    if source == "sqlite":
        return [str(ctx.exe), "capture", "sqlite", "--database", app.url, *common]
    if source == "mysql":
        return [str(ctx.exe), "capture", "mysql", "--dsn", app.url, *common]
    mode = "logical" if source == "postgres-logical" else "trigger"
    return [str(ctx.exe), "capture", "postgres", "--dsn", app.url, *common, "--mode", mode, "--slot", slot]


def capture_section(source: str, app: App, slot: str) -> str:
    """The ``[[capture]]`` section of serve's TOML for the source (strings as JSON, which TOML reads alike)."""
    lines = ["[[capture]]"]
    if source == "sqlite":
        lines += ['kind = "sqlite"', f"database = {json.dumps(app.url)}"]
    elif source == "mysql":
        lines += ['kind = "mysql"', f"dsn = {json.dumps(app.url)}"]
    else:
        mode = "logical" if source == "postgres-logical" else "trigger"
        lines += ['kind = "postgres"', f"dsn = {json.dumps(app.url)}", f'mode = "{mode}"', f'slot = "{slot}"']
    lines += [f'client_code = "{CLIENT_CODE}"', f'tables = ["{TABLE}"]', 'data = "none"']
    return "\n".join(lines) + "\n"


def set_up_capture(ctx: Context, source: str, app: App, slot: str, store_url: str, label: str) -> None:
    done = run_command(ctx, [*capture_command(ctx, source, app, slot), "--setup"], store_url, f"({label}) --setup")
    if done.returncode != 0:
        raise BenchError(f"({label}) `webhook-manager capture … --setup` failed: {output_tail(done)}")


def is_mysql_server(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_bytes().strip() in MYSQL_SERVER_NAMES
    except OSError:
        return False


def mysql_server_pids(app: MysqlApp) -> list[int]:
    """The MySQL/MariaDB server process of ``app`` (one process, a thread per connection; without
    performance_schema its threads cannot be told apart) when it runs on this machine: the one its pid file
    names, else the only such process; none when it cannot be told."""
    if urllib.parse.urlsplit(app.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        return []
    with contextlib.suppress(pymysql.MySQLError, OSError, ValueError):
        with app.conn.cursor() as cur:
            cur.execute("SELECT @@pid_file")
            row = cur.fetchone()
        app.conn.commit()
        if row is not None:
            pid = int(Path(str(row[0])).read_text().strip())
            if is_mysql_server(pid):
                return [pid]
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            if is_mysql_server(int(entry.name)):
                pids.append(int(entry.name))
    return pids if len(pids) == 1 else []


def capture_backends(app: App) -> list[int]:
    """Server processes of the capture's connections to a PostgreSQL application database (walsender included);
    for MySQL/MariaDB the whole server process."""
    if isinstance(app, MysqlApp):
        return mysql_server_pids(app)
    if not isinstance(app, PostgresApp):
        return []
    rows = admin_execute(
        app.url,
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND application_name = 'webhook-manager capture'",
    )
    return [int(row[0]) for row in rows]


def wait_store(
    ctx: Context, reader: StoreReader, action: str, target: int, child: Child, label: str, poll_s: float
) -> tuple[float | None, float]:
    """Poll the store until it holds ``target`` (product, action) events: (first increase, done), monotonic."""
    start_count = reader.count(action)
    seen, last_change, first = start_count, time.monotonic(), None
    next_report = time.monotonic() + 10
    while True:
        count = reader.count(action)
        now = time.monotonic()
        if count > start_count and first is None:
            first = now
        if count >= target:
            return first, now
        if count != seen:
            seen, last_change = count, now
        elif now - last_change > ctx.options.stall:
            raise BenchError(
                f"({label}) capture stalled: {count:,} of {target:,} {action} events in the store, none new in the"
                f" last {ctx.options.stall:g} s; capture log: {child.log_tail()}"
            )
        gone = child.exited()
        if gone is not None:
            raise BenchError(f"({label}) {gone}")
        if now >= next_report:
            log(f"({label}) {count:,} of {target:,} {action} events in the store")
            next_report = now + 10
        ctx.deadline.check(f"({label}) waiting for the store ({count:,} of {target:,} events)")
        time.sleep(poll_s)


# ----------------------------------------------------------------------------------------- (a) and (r)


def part_throughput(ctx: Context, source: str) -> dict[str, Any]:
    """(a) and (r) for one source."""
    rows = ctx.options.rows
    label = f"{source} a"
    slot = f"wm_bench_{uuid.uuid4().hex[:10]}"
    app = new_app(ctx, source, "a")
    child: Child | None = None
    reader: StoreReader | None = None
    copy: App | None = None
    try:
        log(f"({label}) filling {TABLE} with {rows:,} rows")
        app.create(rows)
        store_url = new_store(ctx, "a-" + source)
        add_configuration(ctx, store_url, "update", DEAD_ENDPOINT)
        set_up_capture(ctx, source, app, slot, store_url, label)
        # The copy for the bare read of an outbox, taken before anything more happens in the application database.
        if isinstance(app, SqliteApp):
            copy = SqliteApp(ctx.workdir / "app-a-copy.db")
            app.conn.backup(copy.conn)
        elif source == "postgres-trigger":
            assert isinstance(app, PostgresApp)
            app.close()  # a template database must have no session
            template = urllib.parse.urlsplit(app.url).path.lstrip("/")
            copy_url, _ = create_database(ctx.res, ctx.options.postgres_url, "wm_bench_capture_", template)
            copy = PostgresApp(copy_url)
            app.reopen()

        child = Child(
            "capture",
            capture_command(ctx, source, app, slot),
            {**ctx.base_env, "WEBHOOK_MANAGER_DATABASE_URL": store_url},
            ctx.workdir / f"capture-a-{source}.log",
        )
        ctx.res.children.append(child)
        child.start()
        reader = StoreReader(store_url)
        # Warm-up: one change, recorded, says the capture has claimed its source and runs. (A row-based binlog
        # logs no row an UPDATE leaves as it was: for MySQL the warm-up changes its row.)
        warm_up = "price + 1" if isinstance(app, MysqlApp) else "price"
        app.transaction(f"UPDATE {TABLE} SET price = {warm_up} WHERE id = 1")
        wait_store(ctx, reader, "update", 1, child, label + " warm-up", 0.02)
        if source == "postgres-logical":  # the raw slot: on the same publication, made before the UPDATE
            admin_execute(app.url, "SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot + "_raw",))
        binlog_start = app.binlog_end() if isinstance(app, MysqlApp) else None  # where the bare read starts
        base = reader.count("update")
        backends = capture_backends(app)
        server_start = cpu_sum(backends)
        log(f"({label}) UPDATE of {rows:,} rows, capture running")
        started = time.monotonic()
        committed = app.transaction(f"UPDATE {TABLE} SET price = price + 1")
        # CPU from the commit on: before it, nothing of the UPDATE can be read (but a walsender decodes the WAL
        # as it is written, counted apart)
        cpu_before, server_before = cpu_seconds(child.pid), cpu_sum(backends)
        log(f"({label}) committed after {committed - started:.2f} s; waiting for the store")
        first, done = wait_store(ctx, reader, "update", base + rows, child, label, STORE_POLL_S)
        cpu_after, server_after = cpu_seconds(child.pid), cpu_sum(backends)
        final = reader.count("update") - base
        elapsed = done - committed
        result: dict[str, Any] = {
            "rows": rows,
            "update_s": committed - started,
            "recorded": final,
            "captured_s": elapsed,
            "captured_per_s": rows / elapsed,
            "first_after_s": None if first is None else first - committed,
            "capture_cpu_s": None if cpu_before is None or cpu_after is None else cpu_after - cpu_before,
            "server_cpu_s": None if server_before is None or server_after is None else server_after - server_before,
            "server_cpu_during_update_s": None
            if server_start is None or server_before is None
            else server_before - server_start,
            "server_cpu_what": "the whole server process" if isinstance(app, MysqlApp) else "its server backends",
        }
        child.stop()
        problems = child.problems()
        if problems:
            log(f"({label}) {len(problems)} warning/error line(s) in the capture's log; the first: {problems[0]}")
        result["log_problems"] = problems[:10]
        # (r) the bare read, with the capture stopped
        if source == "postgres-logical":
            result.update(raw_read_slot(ctx, app.url, slot + "_raw", slot, rows, label))
        elif binlog_start is not None:
            result.update(raw_read_binlog(ctx, app.url, binlog_start, rows, label))
        else:
            assert copy is not None
            result.update(raw_read_outbox(ctx, copy, slot, rows, label))
        result["ratio"] = result["captured_per_s"] / result["raw_per_s"] if result.get("raw_per_s") else None
        return result
    finally:
        if child is not None:
            child.stop()
        if reader is not None:
            reader.close()
        app.close()
        if copy is not None:
            copy.close()


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
            admin_execute(url, "SELECT pg_drop_replication_slot(%s)", (raw_slot,))
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


def raw_read_outbox(ctx: Context, copy: App, slot: str, rows: int, label: str) -> dict[str, Any]:
    """On the copy taken after set-up, the same UPDATE (no capture running), then the outbox read in pages with
    the capture's SELECT columns: what reading costs before stamping, converting, recording and deleting."""
    log(f"({label}) bare read: the same UPDATE on a copy, then SELECT of its outbox")
    copy.transaction(f"UPDATE {TABLE} SET price = price + 1")
    read = last_id = 0
    if isinstance(copy, SqliteApp):
        conn = sqlite3.connect(copy.path, isolation_level=None)
        try:
            started = time.monotonic()
            while True:
                page = conn.execute(
                    f"SELECT {SQLITE_OUTBOX_COLUMNS} FROM {SQLITE_OUTBOX} WHERE id > ? ORDER BY id LIMIT ?",
                    (last_id, OUTBOX_PAGE),
                ).fetchall()
                if not page:
                    break
                read += len(page)
                last_id = page[-1][0]
            elapsed = time.monotonic() - started
        finally:
            conn.close()
        what = f"SELECT of the outbox rows of a copy of the file, {OUTBOX_PAGE:,} per page"
    else:
        pg = pg_connect(copy.url)
        try:
            pg.autocommit = True
            outbox = f"{psycopg2.extensions.quote_ident(slot, pg)}.outbox"
            with pg.cursor() as cur:
                started = time.monotonic()
                while True:
                    cur.execute(
                        f"SELECT {PG_OUTBOX_COLUMNS} FROM {outbox} WHERE id > %s ORDER BY id LIMIT %s",
                        (last_id, OUTBOX_PAGE),
                    )
                    page = cur.fetchall()
                    if not page:
                        break
                    read += len(page)
                    last_id = page[-1][0]
                elapsed = time.monotonic() - started
        finally:
            pg.close()
        what = f"SELECT of the outbox rows of a copy of the database (TEMPLATE), {OUTBOX_PAGE:,} per page"
    if read != rows:
        log(f"({label}) warning: the copy's outbox held {read:,} rows, not {rows:,}")
    return {"raw_what": what, "raw_changes": read, "raw_s": elapsed, "raw_per_s": read / elapsed}


# ------------------------------------------------------------------------------------------------- (c)


def wait_ready(ctx: Context, child: Child, port: int, label: str, limit: float = 60.0) -> None:
    give_up = time.monotonic() + limit
    while True:
        gone = child.exited()
        if gone is not None:
            raise BenchError(f"({label}) before /readyz answered 200, {gone}")
        with contextlib.suppress(urllib.error.URLError, OSError):
            with urllib.request.urlopen(f"http://{HOST}:{port}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        ctx.deadline.check(f"({label}) waiting for /readyz")
        if time.monotonic() > give_up:
            raise BenchError(f"({label}) /readyz did not answer 200 within {limit:g} s: {child.log_tail()}")
        time.sleep(0.05)


def wait_receiver(ctx: Context, child: Child, expected: set[int], label: str) -> tuple[list[int], list[float], bool]:
    """Poll the receiver until it has every expected rowId or nothing new arrives for --stall; (ids, times,
    complete)."""
    seen, last_change = -1, time.monotonic()
    while True:
        ids, times = receiver_rows(ctx.receiver_port)
        arrived = len(expected.intersection(ids))
        if arrived >= len(expected):
            return ids, times, True
        now = time.monotonic()
        if arrived != seen:
            seen, last_change = arrived, now
        elif now - last_change > ctx.options.stall:
            log(f"({label}) only {arrived:,} of {len(expected):,} rows arrived; none new in {ctx.options.stall:g} s")
            return ids, times, False
        gone = child.exited()
        if gone is not None:
            raise BenchError(f"({label}) {gone}")
        ctx.deadline.check(f"({label}) waiting for webhooks ({arrived:,} of {len(expected):,} rows)")
        time.sleep(0.1)


def part_latency(ctx: Context, source: str) -> dict[str, Any]:
    """(c) for one source."""
    opts = ctx.options
    label = f"{source} c"
    slot = f"wm_bench_{uuid.uuid4().hex[:10]}"
    app = new_app(ctx, source, "c")
    child: Child | None = None
    try:
        app.create(0)
        store_url = new_store(ctx, "c-" + source)
        add_configuration(ctx, store_url, "insert", f"http://{HOST}:{ctx.receiver_port}/hook")
        set_up_capture(ctx, source, app, slot, store_url, label)
        config = ctx.workdir / f"serve-{source}.toml"
        config.write_text(capture_section(source, app, slot))
        port = free_port()
        env = {
            **ctx.base_env,
            "WEBHOOK_MANAGER_DATABASE_URL": store_url,
            "WEBHOOK_MANAGER_HOST": HOST,
            "WEBHOOK_MANAGER_PORT": str(port),
            "WEBHOOK_MANAGER_LOG_LEVEL": "warning",
            "WEBHOOK_MANAGER_ACCESS_LOG": "false",
            "WEBHOOK_MANAGER_ALLOW_PRIVATE_ENDPOINTS": "true",
        }
        command = [str(ctx.exe), "serve", "--config", str(config), "--port", str(port), "--no-bootstrap-account"]
        child = Child("serve", command, env, ctx.workdir / f"serve-c-{source}.log")
        ctx.res.children.append(child)
        log(f"({label}) starting serve with [[capture]] {source} on port {port}")
        child.start()
        wait_ready(ctx, child, port, label)
        # Warm-up: one row through the whole path (capture claimed, batcher and dispatcher running).
        receiver.reset(ctx.receiver_port, latency=True)
        app.insert([WARMUP_ROW_ID])
        wait_receiver(ctx, child, {WARMUP_ROW_ID}, label + " warm-up")
        receiver.reset(ctx.receiver_port, latency=True)

        per_tx = opts.per_transaction
        interval = per_tx / opts.rate
        transactions = max(1, round(opts.seconds * opts.rate / per_tx))
        committed: dict[int, float] = {}
        commit_ms: list[float] = []
        log(f"({label}) inserting {transactions * per_tx:,} rows at {opts.rate:,}/s, {per_tx} per transaction")
        start = time.monotonic() + 0.05
        wall_start = time.time()
        for k in range(transactions):
            delay = start + k * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if k % 100 == 0:
                ctx.deadline.check(f"({label}) writing")
                gone = child.exited()
                if gone is not None:
                    raise BenchError(f"({label}) {gone}")
            ids = list(range(k * per_tx + 1, (k + 1) * per_tx + 1))
            before = time.time()
            at = app.insert(ids)
            commit_ms.append((at - before) * 1000.0)
            for row_id in ids:
                committed[row_id] = at
        write_s = time.time() - wall_start
        ids_received, times, complete = wait_receiver(ctx, child, set(committed), label)
        child.stop()
        problems = child.problems()
        if problems:
            log(f"({label}) {len(problems)} warning/error line(s) in serve's log; the first: {problems[0]}")
    finally:
        if child is not None:
            child.stop()
        app.close()
    first_receipt: dict[int, float] = {}
    duplicates = 0
    for row_id, at in zip(ids_received, times, strict=True):
        if row_id in first_receipt:
            duplicates += 1
        elif row_id in committed:
            first_receipt[row_id] = at
    latencies = sorted((at - committed[row_id]) * 1000.0 for row_id, at in first_receipt.items())
    commit_ms.sort()
    return {
        "rows": len(committed),
        "arrived": len(first_receipt),
        "complete": complete,
        "duplicates": duplicates,
        "write_s": write_s,
        "achieved_rate": len(committed) / write_s,
        "commit_p50_ms": receiver.percentile(commit_ms, 50),
        "commit_p99_ms": receiver.percentile(commit_ms, 99),
        "p50_ms": receiver.percentile(latencies, 50),
        "p90_ms": receiver.percentile(latencies, 90),
        "p99_ms": receiver.percentile(latencies, 99),
        "max_ms": latencies[-1] if latencies else None,
        "log_problems": problems[:10],
    }


# ---------------------------------------------------------------------------------------------- output


def machine_info(options: Options) -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f", {int(line.split()[1]) / 1024 / 1024:.1f} GB RAM"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    server = "unreachable"
    with contextlib.suppress(BenchError, psycopg2.Error):
        server = str(admin_execute(options.postgres_url, "SHOW server_version")[0][0])
    mysql = "unreachable"
    if "mysql" in options.sources:
        with contextlib.suppress(BenchError, pymysql.MySQLError):
            mysql = str(mysql_execute(options.mysql_url, "SELECT VERSION()")[0][0])
    commit = "unknown"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        root = Path(__file__).resolve().parent.parent
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, timeout=10)
        commit = head.stdout.decode().strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")
    return (
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs ({model or 'unknown model'}){memory},"
        f" load average {load}; Python {platform.python_version()}, SQLite {sqlite3.sqlite_version},"
        f" PostgreSQL {server}"
        + (f", MySQL/MariaDB {mysql}" if "mysql" in options.sources else "")
        + f"; checkout {commit}"
    )


def fmt(value: float | None, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def print_source(source: str, result: dict[str, Any]) -> None:
    a = result.get("a")
    if a is not None:
        cpu, server = a["capture_cpu_s"], a["server_cpu_s"]
        busy = f"capture process CPU {cpu:.2f} s ({cpu / a['captured_s']:.0%} of a core)" if cpu is not None else ""
        if server is not None:
            during = a["server_cpu_during_update_s"]
            busy += f"; {a.get('server_cpu_what', 'its server backends')} {server:.2f} s, and {during:.2f} s during"
            busy += " the UPDATE"
        out(
            f"[{source}] (a) UPDATE of {a['rows']:,} rows committed in {a['update_s']:.2f} s; all {a['recorded']:,}"
            f" update events in the store {a['captured_s']:.2f} s after the commit = {a['captured_per_s']:,.0f}"
            f" changes/s (first after {fmt(a['first_after_s'], '.3f')} s; {busy})"
        )
        out(
            f"[{source}] (r) bare read: {a['raw_changes']:,} changes in {a['raw_s']:.3f} s = {a['raw_per_s']:,.0f}/s"
            f" [{a['raw_what']}"
            + (
                f"; first message after {a['raw_first_after_s']:.3f} s (the WAL decoded up to the commit), then"
                f" {a['raw_changes'] / max(1e-9, a['raw_s'] - a['raw_first_after_s']):,.0f}/s"
                if a.get("raw_first_after_s")
                else ""
            )
            + f"]; captured/raw = {fmt(a['ratio'], '.3f')}"
        )
    c = result.get("c")
    if c is not None:
        out(
            f"[{source}] (c) {c['rows']:,} rows inserted at {c['achieved_rate']:,.0f}/s (commit p50"
            f" {fmt(c['commit_p50_ms'], '.1f')} ms, p99 {fmt(c['commit_p99_ms'], '.1f')} ms); arrived"
            f" {c['arrived']:,} of {c['rows']:,}"
            + (f", {c['duplicates']:,} duplicate receipts" if c["duplicates"] else "")
            + f"; commit→receipt p50 {fmt(c['p50_ms'], '.1f')} ms, p90 {fmt(c['p90_ms'], '.1f')} ms,"
            f" p99 {fmt(c['p99_ms'], '.1f')} ms, max {fmt(c['max_ms'], '.1f')} ms"
        )
    if result.get("error"):
        out(f"[{source}] FAILED: {result['error']}")


def print_table(ctx: Context) -> bool:
    """The summary table; True when every figure was measured and met its target."""
    header = (
        "source",
        "captured changes/s",
        "raw read/s",
        "ratio",
        "p50 ms",
        "p99 ms",
        "arrived",
        "changes/s target",
        "p99 target",
    )
    table: list[tuple[str, ...]] = [header]
    all_ok = True
    for source in ctx.options.sources:
        result = ctx.results.get(source, {})
        a, c = result.get("a"), result.get("c")
        target = target_changes_per_s(source)
        throughput_ok = None if a is None else a["captured_per_s"] >= target
        latency_ok = None if c is None or c["p99_ms"] is None else bool(c["p99_ms"] <= TARGET_P99_MS and c["complete"])
        all_ok = all_ok and bool(throughput_ok) and bool(latency_ok)
        table.append(
            (
                source,
                fmt(a and a["captured_per_s"]),
                fmt(a and a["raw_per_s"]),
                fmt(a and a["ratio"], ".3f"),
                fmt(c and c["p50_ms"], ".1f"),
                fmt(c and c["p99_ms"], ".1f"),
                "-" if c is None else f"{c['arrived']:,}/{c['rows']:,}",
                f">= {target:,.0f}: {verdict(throughput_ok)}",
                f"<= {TARGET_P99_MS:.0f} ms: {verdict(latency_ok)}",
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for n, row in enumerate(table):
        cells = zip(row, widths, strict=True)
        out(" | ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(cells)))
        if n == 0:
            out("-|-".join("-" * w for w in widths))
    return all_ok


def run(ctx: Context) -> bool:
    """Every source, each part on its own; True when all of them ran and met the targets."""
    opts = ctx.options
    out("command: " + shlex.join([sys.executable, *sys.argv]))
    out(machine_info(opts))
    store = (
        "a fresh SQLite file per part"
        if opts.database_url is None
        else f"a fresh database per part on {redact(database_url_for(opts.database_url, '')).rstrip('/')}"
    )
    mysql = f", MySQL/MariaDB ones on {redact(opts.mysql_url).rstrip('/')}" if "mysql" in opts.sources else ""
    out(
        f"store: {store}; PostgreSQL application databases on"
        f" {redact(database_url_for(opts.postgres_url, '')).rstrip('/')}{mysql}; (a) {opts.rows:,} rows in one"
        f" UPDATE; (c) {opts.rate:,} rows/s, {opts.per_transaction} per transaction, for {opts.seconds:g} s"
    )
    targets = ", ".join(f"{s} >= {target_changes_per_s(s):,.0f}" for s in opts.sources)
    out(f"targets: changes/s captured: {targets}; commit→webhook p99 <= {TARGET_P99_MS:.0f} ms")
    if not ctx.exe.exists():
        raise BenchError(f"{ctx.exe} does not exist: run the bench with the project's .venv/bin/python")
    process, ctx.receiver_port = start_receiver()
    ctx.res.receivers.append(process)
    failed = False
    for source in opts.sources:
        result: dict[str, Any] = {}
        ctx.results[source] = result
        for part, measure in (("a", part_throughput), ("c", part_latency)):
            try:
                result[part] = measure(ctx, source)
            except (BenchError, sqlite3.Error, psycopg2.Error, pymysql.MySQLError, OSError) as exc:
                failed = True
                why = str(exc) if isinstance(exc, BenchError) else f"{type(exc).__name__}: {str(exc).strip()}"
                result["error"] = f"({part}) {why}"
                log(f"[{source}] ({part}) failed: {why}")
                if "global deadline" in str(exc):
                    break
        print_source(source, result)
        if "global deadline" in str(result.get("error", "")):
            break
    all_ok = print_table(ctx)
    shown = {**opts.__dict__, "postgres_url": redact(opts.postgres_url), "mysql_url": redact(opts.mysql_url)}
    if opts.database_url is not None:
        shown["database_url"] = redact(opts.database_url)
    targets_of = {s: {"changes_per_s": target_changes_per_s(s), "p99_ms": TARGET_P99_MS} for s in opts.sources}
    out(orjson.dumps({"quick": opts.quick, "options": shown, "targets": targets_of, "results": ctx.results}).decode())
    return all_ok and not failed


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="wm-bench-capture-"))
    res = Resources()
    ctx = Context(options, Deadline(options.timeout), Path(sys.executable).parent / "webhook-manager", workdir, res)

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)  # SIGTERM unwinds like Ctrl-C, into the cleanup
    error: str | None = None
    ok = False
    try:
        ok = run(ctx)
    except BenchError as exc:
        error = str(exc)
    except KeyboardInterrupt:
        error = "interrupted"
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        res.cleanup()
        if options.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if error:
        print(f"FAILED: {error}", file=sys.stderr, flush=True)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
