"""The benches' databases: URL helpers, redaction, PostgreSQL and MySQL/MariaDB connections, and the registry of
the databases a bench creates (``wm_bench_<…><random>``), each dropped on exit whatever happens.

A database is noted in :class:`Databases` *before* its CREATE runs, so a failure half-way leaves nothing behind;
dropping a PostgreSQL database first ends its sessions (walsenders included) and drops its replication slots.
Everything is bounded: 10 s to connect, 10 minutes per statement, 30 s for slots and locks to go.

The drivers (psycopg2 of the ``postgres`` extra, PyMySQL of the ``mysql`` extra) are imported when first used, so
a bench that needs no server (bench/pipeline.py on SQLite) runs without them.
"""

from __future__ import annotations

import contextlib
import time
import urllib.parse
import uuid
from typing import TYPE_CHECKING, Any

from bench.harness.limits import BenchError
from bench.harness.report import log

if TYPE_CHECKING:
    import pymysql


def is_postgres(url: str | None) -> bool:
    return url is not None and url.startswith(("postgresql://", "postgres://"))


def is_mysql(url: str | None) -> bool:
    return url is not None and url.startswith(("mysql://", "mariadb://"))


def redact(url: str) -> str:
    """A URL without its password, for the output."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user.partition(':')[0]}:***@{host}"))


def database_url_for(url: str, name: str) -> str:
    """``url`` with its database replaced by ``name`` (same server, user, password and options)."""
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path=f"/{name}"))


def server_shown(url: str) -> str:
    """The server of a URL, without database or password, for the output."""
    return redact(database_url_for(url, "")).rstrip("/")


def first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# ------------------------------------------------------------------------------------------------ PostgreSQL


def pg_connect(url: str, **kwargs: Any) -> Any:
    """A psycopg2 connection, bounded: 10 s to connect, 10 minutes per statement."""
    import psycopg2

    try:
        return psycopg2.connect(url, connect_timeout=10, options="-c statement_timeout=600000", **kwargs)
    except psycopg2.Error as exc:
        raise BenchError(f"cannot connect to {redact(url)}: {first_line(exc)}") from exc


def pg_execute(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """One statement on an autocommit connection of its own; its rows (if any)."""
    conn = pg_connect(url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return list(cur.fetchall()) if cur.description else []
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------- MySQL/MariaDB


def mysql_settings(url: str) -> dict[str, Any]:
    """``connection_settings`` of a BinLogStreamReader for the server of a mysql:// URL."""
    parts = urllib.parse.urlsplit(url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": urllib.parse.unquote(parts.username or "root"),
        "passwd": urllib.parse.unquote(parts.password or ""),
    }


def mysql_connect(url: str) -> pymysql.connections.Connection[Any]:
    """A PyMySQL connection to the server (and database, if any) of a mysql:// URL; not autocommit; bounded:
    10 s to connect, 10 minutes per read or write."""
    import pymysql

    settings = mysql_settings(url)
    try:
        return pymysql.connect(
            host=settings["host"],
            port=settings["port"],
            user=settings["user"],
            password=settings["passwd"],
            database=urllib.parse.unquote(urllib.parse.urlsplit(url).path.lstrip("/")) or None,
            charset="utf8mb4",
            connect_timeout=10,
            read_timeout=600,
            write_timeout=600,
        )
    except pymysql.MySQLError as exc:
        raise BenchError(f"cannot connect to {redact(url)}: {exc}") from exc


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


# --------------------------------------------------------------------------------------------- the registry


class Databases:
    """The databases a bench created, on PostgreSQL or MySQL/MariaDB servers, until they are dropped."""

    def __init__(self) -> None:
        self.created: dict[str, str] = {}  # name → the admin URL it was created through

    def create(self, admin_url: str, prefix: str, template: str | None = None) -> tuple[str, str]:
        """A fresh database ``<prefix><random>`` (PostgreSQL: optionally a copy of ``template``) on the server of
        ``admin_url``, a postgresql:// or mysql:// URL: (its URL, its name)."""
        name = f"{prefix}{uuid.uuid4().hex[:12]}"
        self.created[name] = admin_url  # before CREATE: dropped on exit whatever happens from here
        try:
            if is_mysql(admin_url):
                mysql_execute(admin_url, f"CREATE DATABASE `{name}`")
            else:
                pg_execute(admin_url, f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        except driver_errors(admin_url) as exc:
            raise BenchError(f"cannot create database {name} on {server_shown(admin_url)}: {first_line(exc)}") from exc
        return database_url_for(admin_url, name), name

    def drop(self, name: str) -> None:
        """Drop a database the bench created (ending its sessions first). Logs, never raises."""
        admin_url = self.created.get(name)
        if admin_url is None:
            return
        try:
            conn = mysql_connect(admin_url) if is_mysql(admin_url) else pg_connect(admin_url)
        except BenchError as exc:
            log(f"database {name} may be left behind: {exc}")
            return
        try:
            if is_mysql(admin_url):
                _drop_mysql(conn, name)
            else:
                _drop_postgres(conn, name)
            del self.created[name]
            log(f"dropped database {name}")
        except driver_errors(admin_url) as exc:
            hint = (
                f"DROP DATABASE `{name}` on {redact(admin_url)}"
                if is_mysql(admin_url)
                else f"drop its replication slots (pg_replication_slots) and then DROP DATABASE {name} WITH (FORCE)"
            )
            log(f"could not drop database {name}: {first_line(exc)}; {hint}")
        finally:
            with contextlib.suppress(driver_errors(admin_url)):
                conn.close()

    def drop_all(self) -> None:
        for name in list(self.created):
            self.drop(name)


def driver_errors(url: str) -> type[Exception]:
    """The base class of the errors of the driver of a postgresql:// or mysql:// URL."""
    if is_mysql(url):
        import pymysql

        return pymysql.MySQLError
    import psycopg2

    return psycopg2.Error


def _drop_postgres(conn: Any, name: str) -> None:
    """End the database's sessions (walsenders included), drop its replication slots, drop it."""
    import psycopg2

    conn.autocommit = True
    with conn.cursor() as cur:
        give_up = time.monotonic() + 30
        while True:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            cur.execute("SELECT slot_name, active_pid FROM pg_replication_slots WHERE database = %s", (name,))
            for slot, active_pid in cur.fetchall():
                if active_pid is None:
                    with contextlib.suppress(psycopg2.Error):
                        cur.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            cur.execute("SELECT count(*) FROM pg_replication_slots WHERE database = %s", (name,))
            if cur.fetchone()[0] == 0 or time.monotonic() > give_up:
                break
            time.sleep(0.1)
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _drop_mysql(conn: pymysql.connections.Connection[Any], name: str) -> None:
    """End the database's sessions, drop it (waiting at most 30 s for its locks)."""
    import pymysql

    conn.autocommit(True)
    with conn.cursor() as cur:
        cur.execute("SET SESSION lock_wait_timeout = 30")
        cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND ID <> CONNECTION_ID()", (name,))
        for (session,) in cur.fetchall():
            with contextlib.suppress(pymysql.MySQLError):
                cur.execute(f"KILL {int(session)}")
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
