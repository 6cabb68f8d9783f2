"""Capture from PostgreSQL with triggers, for servers where replication is not allowed.

Statement-level triggers (with transition tables, so a bulk statement costs one INSERT … SELECT) write each
changed row to an outbox table in a schema of the capture's own (``spec.slot_name``), in the application's
transaction; a TRUNCATE writes one row. Every statement also sends a NOTIFY, delivered at commit, which wakes
the capture.

Reading in commit order: the capture only ever sees committed rows, and it takes them in *batches*: one
UPDATE stamps the unread rows it can see, in id order, with the next batch number. A change that commits
later gets a later batch, and two changes of one row are stamped in the order they were made (the second
waited for the first's lock). The batch number is the position: recorded with the events, then the rows
are deleted; after a crash, stamped batches above the stored position are sent again, those at or below it
are deleted.
"""

from __future__ import annotations

import logging
import secrets
import select
import time
from typing import Any

import orjson
import psycopg2

from webhook_manager.capture.changes import Batch, Change
from webhook_manager.capture.postgres_common import Table, connect, database_name, find_tables, quote_ident
from webhook_manager.capture.spec import CaptureSpec
from webhook_manager.errors import CaptureBusy, CaptureError

log = logging.getLogger("webhook_manager.capture.postgres")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class PostgresTriggerSource:
    """A capture source over triggers and an outbox (see the module's notes)."""

    def __init__(self, spec: CaptureSpec) -> None:
        self.spec = spec
        self.schema = spec.slot_name
        self._conn: Any = None
        self._q = ""
        self._pending: list[int] = []

    def open(self) -> None:
        conn = connect(self.spec)
        conn.autocommit = True
        self._conn = conn
        try:
            self._tables = find_tables(conn, self.spec)
        except BaseException:
            self.close()
            raise
        self._q = quote_ident(conn, self.schema)

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg2.Error:
                pass
            self._conn = None

    def setup(self) -> str:
        self._install()
        return (
            f"set up capture of {', '.join(self.spec.tables)} in {database_name(self._conn)}:"
            f" triggers and outbox in schema {self.schema!r}"
        )

    def teardown(self) -> str:
        q = self._q
        with self._conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,))
            if cur.fetchone() is None:
                return f"nothing to remove: no schema {self.schema!r} in {database_name(self._conn)}"
            cur.execute(f"SELECT count(*) FROM {q}.outbox")
            (left,) = cur.fetchone()
            cur.execute(f"DROP SCHEMA {q} CASCADE")  # the triggers go with their function
        note = f"; {left} changes not yet recorded were dropped" if left else ""
        return f"removed the capture triggers and schema {self.schema!r} from {database_name(self._conn)}{note}"

    def _install(self) -> None:
        """Create the schema, outbox, functions and triggers that are missing or differ, in one transaction.
        What is already in place is left alone: a capture restarting takes no lock on the application's
        tables."""
        q = self._q
        self._conn.autocommit = False
        try:
            with self._conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"webhook_manager_capture:{self.schema}",))
                cur.execute("SELECT to_regclass(%s)", (f"{q}.meta",))
                if cur.fetchone()[0] is None:
                    cur.execute(f"CREATE SCHEMA IF NOT EXISTS {q}")
                    cur.execute(
                        f"CREATE TABLE {q}.outbox (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                        " batch bigint, table_name text NOT NULL, action text NOT NULL, row_id text, data jsonb,"
                        " changed_at timestamptz NOT NULL DEFAULT clock_timestamp())"
                    )
                    cur.execute(f"CREATE INDEX outbox_unread ON {q}.outbox (id) WHERE batch IS NULL")
                    cur.execute(f"CREATE INDEX outbox_batch ON {q}.outbox (batch) WHERE batch IS NOT NULL")
                    cur.execute(f"CREATE SEQUENCE {q}.batches")
                    cur.execute(f"CREATE TABLE {q}.meta (key text PRIMARY KEY, value text NOT NULL)")
                    cur.execute(
                        f"INSERT INTO {q}.meta (key, value) VALUES ('epoch', %s), ('client_code', %s)",
                        (secrets.token_hex(8), self.spec.client_code),
                    )
                cur.execute(f"SELECT key, value FROM {q}.meta")
                meta = dict(cur.fetchall())
                if meta["client_code"] != self.spec.client_code:
                    raise CaptureError(
                        f"schema {self.schema!r} captures for client {meta['client_code']!r}: give this source"
                        " its own --slot name"
                    )
                self._epoch = meta["epoch"]
                cur.execute(
                    "SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE tgname LIKE %s AND NOT"
                    " (tgrelid = ANY (%s))",
                    (f"{self.schema}:%", [t.oid for t in self._tables]),
                )
                for stale, trigger in cur.fetchall():
                    cur.execute(f"DROP TRIGGER {quote_ident(self._conn, trigger)} ON {stale}")
                for table in self._tables:
                    self._install_table(cur, table)
            self._conn.commit()
        except BaseException:
            self._conn.rollback()
            raise
        finally:
            self._conn.autocommit = True

    def _install_table(self, cur: Any, table: Table) -> None:
        q = self._q
        function_name = f"capture:{table.name}"
        function = f"{q}.{quote_ident(self._conn, function_name)}"

        # The row is read through to_jsonb, so no column is named in the trigger's SQL: a column renamed or
        # dropped later never makes the application's writes fail.
        # (``row.*``: a bare alias would mean a column of that name, if the table has one)
        def rid(alias: str) -> str:
            column = table.row_id_column
            return f"to_jsonb({alias}.*) ->> {_literal(column)}" if column else "NULL"

        data = "to_jsonb(webhook_manager_new.*)" if self.spec.data == "row" else "NULL"
        new_id, old_id = rid("webhook_manager_new"), rid("webhook_manager_old")
        new_rows, old_rows = "new_rows webhook_manager_new", "old_rows webhook_manager_old"
        into = f"INSERT INTO {q}.outbox (table_name, action, row_id, data)"
        name = _literal(table.name)
        body = (
            f" BEGIN IF TG_OP = 'INSERT' THEN {into} SELECT {name}, 'insert', {new_id}, {data} FROM {new_rows};"
            f" ELSIF TG_OP = 'UPDATE' THEN {into} SELECT {name}, 'update', {new_id}, {data} FROM {new_rows};"
            f" ELSIF TG_OP = 'DELETE' THEN {into} SELECT {name}, 'delete', {old_id}, NULL FROM {old_rows};"
            f" ELSE {into} VALUES ({name}, 'delete', NULL, NULL); END IF;"
            f" PERFORM pg_notify({_literal(self.schema)}, ''); RETURN NULL; END "
        )
        cur.execute(
            "SELECT oid, prosrc FROM pg_proc WHERE proname = %s AND pronamespace = %s::regnamespace",
            (function_name, self._q),
        )
        found = cur.fetchone()
        if found is None or found[1] != body:
            cur.execute(f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $fn${body}$fn$")
        cur.execute(
            "SELECT t.tgname FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid"
            " WHERE t.tgrelid = %s AND p.proname = %s AND p.pronamespace = %s::regnamespace",
            (table.oid, function_name, self._q),
        )
        present = {row[0] for row in cur.fetchall()}
        for op, referencing in (
            ("insert", "REFERENCING NEW TABLE AS new_rows"),
            ("update", "REFERENCING NEW TABLE AS new_rows"),
            ("delete", "REFERENCING OLD TABLE AS old_rows"),
            ("truncate", ""),
        ):
            trigger_name = f"{self.schema}:{op}"
            if trigger_name in present:
                continue
            trigger = quote_ident(self._conn, trigger_name)
            cur.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table.qualified}")
            cur.execute(
                f"CREATE TRIGGER {trigger} AFTER {op.upper()} ON {table.qualified} {referencing}"
                f" FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )

    def claim(self) -> str:
        with self._conn.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (f"webhook_manager_capture:{self.schema}:run",))
            if not cur.fetchone()[0]:
                raise CaptureBusy(f"another process captures schema {self.schema!r} of {self.spec.describe()}")
        self._install()
        with self._conn.cursor() as cur:
            cur.execute(f"LISTEN {self._q}")
            cur.execute("SELECT system_identifier FROM pg_control_system()")
            (system,) = cur.fetchone()
        return f"postgres-trigger:{system}:{database_name(self._conn)}:{self.schema}:{self._epoch}"

    def resume(self, position: str | None) -> None:
        done = int(position) if position else 0
        with self._conn.cursor() as cur:
            cur.execute(f"DELETE FROM {self._q}.outbox WHERE batch <= %s", (done,))
            cur.execute(f"SELECT DISTINCT batch FROM {self._q}.outbox WHERE batch IS NOT NULL ORDER BY batch")
            self._pending = [row[0] for row in cur.fetchall()]

    def acknowledge(self, ack: Any) -> None:
        with self._conn.cursor() as cur:
            cur.execute(f"DELETE FROM {self._q}.outbox WHERE batch <= %s", (int(ack),))

    _COLUMNS = "id, table_name, action, row_id, data::text, (extract(epoch FROM changed_at) * 1000)::bigint"

    def read(self, limit: int, wait_s: float) -> Batch | None:
        deadline = time.monotonic() + wait_s
        while True:
            batch = self._next(limit)
            if batch is not None:
                return batch
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            select.select([self._conn], [], [], remaining)
            self._conn.poll()
            self._conn.notifies.clear()

    def _next(self, limit: int) -> Batch | None:
        q = self._q
        with self._conn.cursor() as cur:
            if self._pending:
                number = self._pending.pop(0)
                cur.execute(f"SELECT {self._COLUMNS} FROM {q}.outbox WHERE batch = %s", (number,))
            else:
                cur.execute(f"SELECT nextval('{q}.batches')")
                (number,) = cur.fetchone()
                cur.execute(
                    f"UPDATE {q}.outbox SET batch = %s WHERE id IN (SELECT id FROM {q}.outbox WHERE batch IS NULL"
                    f" ORDER BY id LIMIT %s) RETURNING {self._COLUMNS}",
                    (number, limit),
                )
            rows = cur.fetchall()
        if not rows:
            return None
        rows.sort()
        changes: list[Change] = [
            (table, action, rid or 0, ms, None if data is None else orjson.loads(data))
            for _, table, action, rid, data, ms in rows
        ]
        return Batch(changes, str(number), ack=number)
