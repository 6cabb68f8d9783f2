"""The application databases the capture bench writes to, as the application would: a table
``product (id integer primary key, name text, price real)`` on SQLite, PostgreSQL or MySQL/MariaDB, one big UPDATE
(a) and small INSERT transactions (c); and the database server processes whose CPU time (a) reports."""

from __future__ import annotations

import contextlib
import sqlite3
import time
import urllib.parse
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extras
import pymysql

from bench.harness.databases import mysql_connect, pg_connect, pg_execute
from bench.harness.limits import BenchError
from bench.harness.service import TABLE

MYSQL_SERVER_NAMES = (b"mariadbd", b"mysqld")  # the local server process, for its CPU time


def rows_for(ids: list[int]) -> list[tuple[int, str, float]]:
    return [(i, f"product {i}", 1.0) for i in ids]


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
        self.conn.executemany(f"INSERT INTO {TABLE} (id, name, price) VALUES (?, ?, ?)", rows_for(ids))
        self.conn.execute("COMMIT")
        return time.time()

    def close(self) -> None:
        self.conn.close()


class _ServerApp:
    """An application database on a server, one connection, explicit commits."""

    url: str
    conn: Any

    def transaction(self, statement: str) -> float:
        """Run one statement in a transaction of its own; ``time.monotonic()`` once COMMIT has returned."""
        with self.conn.cursor() as cur:
            cur.execute(statement)
        self.conn.commit()
        return time.monotonic()


class PostgresApp(_ServerApp):
    """An application database on PostgreSQL, written through psycopg2."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn = None
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

    def insert(self, ids: list[int]) -> float:
        """Insert rows in one transaction; ``time.time()`` once COMMIT has returned."""
        with self.conn.cursor() as cur:
            psycopg2.extras.execute_values(cur, f"INSERT INTO {TABLE} (id, name, price) VALUES %s", rows_for(ids))
        self.conn.commit()
        return time.time()

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(psycopg2.Error):
                self.conn.close()
            self.conn = None


class MysqlApp(_ServerApp):
    """An application database on MySQL/MariaDB, written through PyMySQL."""

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

    def insert(self, ids: list[int]) -> float:
        """Insert rows in one transaction; ``time.time()`` once COMMIT has returned."""
        with self.conn.cursor() as cur:  # PyMySQL sends one multi-row INSERT
            cur.executemany(f"INSERT INTO {TABLE} (id, name, price) VALUES (%s, %s, %s)", rows_for(ids))
        self.conn.commit()
        return time.time()

    def close(self) -> None:
        with contextlib.suppress(pymysql.MySQLError):
            self.conn.close()


App = SqliteApp | PostgresApp | MysqlApp


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
        if entry.name.isdigit() and is_mysql_server(int(entry.name)):
            pids.append(int(entry.name))
    return pids if len(pids) == 1 else []


def capture_backends(app: App) -> list[int]:
    """Server processes of the capture's connections to a PostgreSQL application database (walsender included);
    for MySQL/MariaDB the whole server process."""
    if isinstance(app, MysqlApp):
        return mysql_server_pids(app)
    if not isinstance(app, PostgresApp):
        return []
    rows = pg_execute(
        app.url,
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND application_name = 'webhook-manager capture'",
    )
    return [int(row[0]) for row in rows]
