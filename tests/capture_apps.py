"""Application databases for the capture tests: a real SQLite file, or a fresh database on the real
PostgreSQL or MariaDB, written to the way an application would, with a :class:`CaptureSpec` pointing at it."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg2
import psycopg2.errors
import pymysql
import pytest

from tests.conftest import IN_CI
from tests.databases import POSTGRES_URL, postgres_database
from tests.waiting import wait_until
from webhook_manager.capture.spec import CaptureSpec

KINDS = [
    "sqlite",
    pytest.param("postgres-logical", marks=pytest.mark.postgres),
    pytest.param("postgres-trigger", marks=pytest.mark.postgres),
    pytest.param("mysql", marks=pytest.mark.mysql),
]
MYSQL_URL = os.environ.get("WEBHOOK_MANAGER_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306")


class AppDb:
    """One application database; every ``execute``/``executemany`` call is its own committed transaction."""

    def __init__(self, kind: str, where: str) -> None:
        self.kind = kind
        self.where = where  # a file path (sqlite), a postgresql:// or a mysql:// URL
        self.slot = f"wm_test_{uuid.uuid4().hex[:10]}"

    @property
    def is_postgres(self) -> bool:
        return self.kind.startswith("postgres")

    @property
    def is_mysql(self) -> bool:
        return self.kind == "mysql"

    def spec(self, tables: Sequence[str] = ("product",), **changes: Any) -> CaptureSpec:
        fields: dict[str, Any] = {"client_code": "100", "tables": tuple(tables)}
        if self.is_postgres:
            fields |= {"kind": "postgres", "dsn": self.where, "mode": self.kind.removeprefix("postgres-")}
            fields["slot"] = self.slot
        elif self.is_mysql:
            fields |= {"kind": "mysql", "dsn": self.where}
        else:
            fields |= {"kind": "sqlite", "database": self.where}
        return CaptureSpec(**(fields | changes))

    def _sql(self, sql: str) -> str:
        if self.is_mysql:  # MySQL keys on a text column need a length
            sql = sql.replace("text PRIMARY KEY", "varchar(191) PRIMARY KEY")
        return sql.replace("?", "%s") if self.is_postgres or self.is_mysql else sql

    def execute(self, *statements: str | tuple[str, Sequence[Any]]) -> None:
        """Run statements in one transaction."""
        self.executemany_in_one([(s, [()]) if isinstance(s, str) else (s[0], [s[1]]) for s in statements])

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.executemany_in_one([(sql, rows)])

    def executemany_in_one(self, work: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> None:
        if self.is_mysql:
            my = _mysql_connect(self.where)
            try:
                with my.cursor() as cur:
                    for sql, rows in work:
                        for row in rows:
                            cur.execute(self._sql(sql), tuple(row) or None)
                my.commit()
            finally:
                my.close()
        elif self.is_postgres:
            conn = psycopg2.connect(self.where)
            try:
                with conn, conn.cursor() as cur:
                    for sql, rows in work:
                        for row in rows:
                            cur.execute(self._sql(sql), tuple(row) or None)
            finally:
                conn.close()
        else:
            lite = sqlite3.connect(self.where, timeout=30)
            try:
                with lite:
                    for sql, rows in work:
                        lite.executemany(sql, rows)
            finally:
                lite.close()

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        if self.is_mysql:
            my = _mysql_connect(self.where)
            try:
                with my.cursor() as cur:
                    cur.execute(sql)
                    return list(cur.fetchall())
            finally:
                my.close()
        if self.is_postgres:
            conn = psycopg2.connect(self.where)
            try:
                with conn, conn.cursor() as cur:
                    cur.execute(sql)
                    return list(cur.fetchall())
            finally:
                conn.close()
        conn2 = sqlite3.connect(self.where)
        try:
            return list(conn2.execute(sql).fetchall())
        finally:
            conn2.close()

    def create_product_table(self) -> None:
        """product (integer key, name, price) and tag (a text key, no integer one)."""
        self.execute(
            "CREATE TABLE product (id integer PRIMARY KEY, name text NOT NULL, price real)",
            "CREATE TABLE tag (name text PRIMARY KEY, note text)",
        )


def drop_slots(url: str) -> None:
    """Drop the replication slots of the database at ``url`` (a database with one cannot be dropped)."""
    name = url.rsplit("/", 1)[1]
    conn = psycopg2.connect(POSTGRES_URL)
    conn.autocommit = True

    def dropped() -> bool:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots"
                " WHERE database = %s AND active_pid IS NOT NULL",
                (name,),
            )
            try:
                cur.execute(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = %s",
                    (name,),
                )
            except psycopg2.errors.ObjectInUse:
                return False  # its process has not ended yet
            return True

    try:
        wait_until(dropped, timeout=5, what=f"the replication slots of {name} to be dropped")
    finally:
        conn.close()


def _require_logical_wal(url: str) -> None:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW wal_level")
            row = cur.fetchone()
            level = row[0] if row else None
    finally:
        conn.close()
    if level != "logical":
        message = f"PostgreSQL's wal_level is {level!r}, not logical: run scripts/test-services first (README, Tests)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def _mysql_connect(url: str) -> pymysql.connections.Connection[Any]:
    parts = urlsplit(url)
    return pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""),
        database=parts.path.lstrip("/") or None,
        connect_timeout=5,
    )


@contextmanager
def mysql_database() -> Iterator[str]:
    """A fresh database on the MariaDB/MySQL server, its binlog checked, for the block; dropped on leaving it,
    also when the test fails. Skips (fails under CI=true) when the server cannot be reached or does not write
    a row-based binlog."""
    try:
        admin = _mysql_connect(MYSQL_URL)
    except pymysql.err.OperationalError as exc:
        message = f"MariaDB at {MYSQL_URL} cannot be reached: {exc}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    name = f"wm_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT @@log_bin, @@binlog_format, @@binlog_row_metadata")
            row = cur.fetchone()
            if row is None or (int(row[0]), str(row[1]), str(row[2])) != (1, "ROW", "FULL"):
                message = f"MariaDB writes no row-based binlog with full metadata ({row}): run scripts/test-services"
                if IN_CI:
                    pytest.fail(message)
                pytest.skip(message)
            cur.execute(f"CREATE DATABASE {name}")
        try:
            yield f"{MYSQL_URL.rstrip('/')}/{name}"
        finally:
            with admin.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {name}")
    finally:
        admin.close()


@contextmanager
def app_database(kind: str, tmp_path: Path) -> Iterator[AppDb]:
    """An empty application database of ``kind`` (sqlite, postgres-logical, postgres-trigger, mysql) for the
    block; dropped (with its replication slots) on leaving it, also when the test fails."""
    if kind == "mysql":
        with mysql_database() as url:
            yield AppDb(kind, url)
        return
    if kind == "sqlite":
        path = tmp_path / "app.db"
        sqlite3.connect(path).close()
        yield AppDb(kind, str(path))
        return
    with postgres_database(migrated=False) as url:
        try:
            if kind == "postgres-logical":
                _require_logical_wal(url)
            yield AppDb(kind, url)
        finally:
            # a slot released by a process that just ended may still be in use: the database drop says so
            with suppress(psycopg2.Error):
                drop_slots(url)
