"""Records the binlog events of a few transactions on a real MariaDB/MySQL server, as the records the
MySQL capture hands its transaction assembler, into ``mariadb_binlog.json`` beside this file.

The unit tests of :mod:`webhook_manager.capture.binlog_transactions` replay them, as the pgoutput tests
replay protocol messages. Run again (from the checkout, with the server of ``scripts/test-services``) when
the records or the scenarios change::

    .venv/bin/python -m tests.unit.recordings.record_binlog
"""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import (
    RotateEvent,
)

from tests.capture_apps import MYSQL_URL as URL
from tests.capture_apps import _mysql_connect
from webhook_manager.capture.mysql_binlog import BINLOG_EVENTS, record_of

OUT = Path(__file__).with_name("mariadb_binlog.json")

SCENARIOS: dict[str, list[str]] = {
    "one transaction of inserts, an update and a delete": [
        "BEGIN",
        "INSERT INTO product (id, name) VALUES (1, 'a'), (2, 'b')",
        "UPDATE product SET name = 'c' WHERE id = 1",
        "DELETE FROM product WHERE id = 2",
        "INSERT INTO other (id) VALUES (7)",
        "COMMIT",
    ],
    "statements on their own": [
        "INSERT INTO product (id, name) VALUES (3, 'x')",
        "TRUNCATE TABLE product",
        "ALTER TABLE other ADD COLUMN note TEXT",
    ],
    "savepoints inside a transaction": [
        "BEGIN",
        "INSERT INTO product (id, name) VALUES (10, 'p')",
        "SAVEPOINT s1",
        "INSERT INTO product (id, name) VALUES (11, 'q')",
        "ROLLBACK TO SAVEPOINT s1",
        "INSERT INTO product (id, name) VALUES (12, 'r')",
        "COMMIT",
    ],
    "a two-phase transaction": [
        "XA START 'wm1'",
        "INSERT INTO product (id, name) VALUES (20, 'xa')",
        "XA END 'wm1'",
        "XA PREPARE 'wm1'",
        "XA COMMIT 'wm1'",
    ],
    "a change logged as a statement": [
        "SET SESSION binlog_format = 'STATEMENT'",
        "DELETE FROM product WHERE id > 100",
        "SET SESSION binlog_format = 'ROW'",
    ],
    "a multi-table delete": [
        "INSERT INTO other (id) VALUES (30)",
        "INSERT INTO product (id, name) VALUES (30, 'm')",
        "SET SESSION binlog_format = 'STATEMENT'",
        "DELETE other, product FROM other JOIN product ON product.id = other.id WHERE other.id = 30",
        "SET SESSION binlog_format = 'ROW'",
    ],
}


def _connect(database: str | None = None) -> Any:
    conn = _mysql_connect(URL.rstrip("/") + "/" + (database or ""))
    conn.autocommit(True)
    return conn


def _record(scenario: list[str], database: str) -> list[dict[str, Any]]:
    conn = _connect(database)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW MASTER STATUS")
            file, position = cur.fetchone()[:2]
            for statement in scenario:
                cur.execute(statement)
            cur.execute("SHOW MASTER STATUS")
            end = cur.fetchone()[1]
    finally:
        conn.close()
    parts = urlsplit(URL)
    stream = BinLogStreamReader(
        connection_settings={
            "host": parts.hostname or "127.0.0.1",
            "port": parts.port or 3306,
            "user": unquote(parts.username or "root"),
            "passwd": unquote(parts.password or ""),
        },
        server_id=4_000_000_000 - 7,
        log_file=file,
        log_pos=position,
        resume_stream=True,
        blocking=False,
        only_events=BINLOG_EVENTS,
        use_column_name_cache=True,
    )
    records: list[dict[str, Any]] = []
    try:
        for event in stream:
            record = record_of(event)
            if record is None or (isinstance(event, RotateEvent) and not records):
                continue  # the rotate the stream starts with says where it starts: the recording begins there
            records.append({"kind": type(record).__name__, **dataclasses.asdict(record)})
            if getattr(getattr(event, "packet", None), "log_pos", 0) >= end:
                break
    finally:
        stream.close()
    return records


def main() -> None:
    database = f"wm_record_{uuid.uuid4().hex[:8]}"
    admin = _connect()
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {database}")
        setup = _connect(database)
        with setup.cursor() as cur:
            cur.execute("CREATE TABLE product (id INT PRIMARY KEY, name TEXT)")
            cur.execute("CREATE TABLE other (id INT PRIMARY KEY)")
        setup.close()
        recordings = {name: _record(statements, database) for name, statements in SCENARIOS.items()}
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {database}")
        admin.close()
    # The database's name is random; the tests know it as "app".
    text = orjson.dumps(recordings, option=orjson.OPT_INDENT_2).decode().replace(database, "app")
    OUT.write_text(text + "\n", encoding="utf-8")
    print(f"recorded {sum(map(len, recordings.values()))} records of {len(recordings)} scenarios into {OUT}")


if __name__ == "__main__":
    main()
