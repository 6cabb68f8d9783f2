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

import contextlib
import logging
import secrets
import select
import time
from typing import Any

import psycopg2
import psycopg2.errors

from webhook_manager.capture.changes import Batch, Changes, json_or_text
from webhook_manager.capture.postgres_tables import Table, connect, database_name, find_tables, quote_ident
from webhook_manager.capture.source import Prepared
from webhook_manager.capture.spec import CaptureSpec
from webhook_manager.domain.errors import CaptureBusy, CaptureError, first_line

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
            with contextlib.suppress(psycopg2.Error):
                self._conn.close()
            self._conn = None

    def setup(self) -> Prepared:
        self._install()
        return Prepared(f"{self.spec.set_up(database_name(self._conn))}: triggers and outbox in schema {self.schema!r}")

    def teardown(self) -> Prepared:
        q = self._q
        with self._conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,))
            if cur.fetchone() is None:
                return Prepared(f"nothing to remove: no schema {self.schema!r} in {database_name(self._conn)}")
            if not self._try_run_lock(cur):
                raise CaptureError(f"a capture of schema {self.schema!r} is running: stop it first")
            cur.execute(f"SELECT count(*) FROM {q}.outbox")
            (left,) = cur.fetchone()
            cur.execute(f"SELECT value FROM {q}.meta WHERE key = 'epoch'")
            (epoch,) = cur.fetchone()
            cur.execute(f"DROP SCHEMA {q} CASCADE")  # the triggers go with their function
        note = f"; {left} changes not yet recorded were dropped" if left else ""
        return Prepared(
            f"removed the capture triggers and schema {self.schema!r} from {database_name(self._conn)}{note}",
            key=self._key(epoch),
            forget=True,
        )

    def _install(self) -> None:
        """Create the schema, outbox, functions and triggers that are missing or differ, in one transaction.
        What is already in place is left alone: a capture restarting takes no lock on the application's
        tables."""
        q = self._q
        self._conn.autocommit = False
        try:
            with self._conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"webhook_manager_capture:{self.schema}",))
                tables = ",".join(sorted(self.spec.tables))
                cur.execute("SELECT to_regclass(%s)", (f"{q}.meta",))
                if cur.fetchone()[0] is None:
                    cur.execute(f"CREATE SCHEMA IF NOT EXISTS {q}")
                    cur.execute(
                        f"CREATE TABLE {q}.outbox (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                        " batch bigint, table_name text NOT NULL, action text NOT NULL, row_id text, data json,"
                        " changed_at timestamptz NOT NULL DEFAULT clock_timestamp())"
                    )
                    cur.execute(f"CREATE INDEX outbox_unread ON {q}.outbox (id) WHERE batch IS NULL")
                    cur.execute(f"CREATE INDEX outbox_batch ON {q}.outbox (batch) WHERE batch IS NOT NULL")
                    cur.execute(f"CREATE SEQUENCE {q}.batches")
                    cur.execute(f"CREATE TABLE {q}.meta (key text PRIMARY KEY, value text NOT NULL)")
                    cur.execute(
                        f"INSERT INTO {q}.meta (key, value) VALUES ('epoch', %s), ('client_code', %s), ('tables', %s)",
                        (secrets.token_hex(8), self.spec.client_code, tables),
                    )
                cur.execute(f"SELECT key, value FROM {q}.meta")
                meta = dict(cur.fetchall())
                if meta["client_code"] != self.spec.client_code or meta["tables"] != tables:
                    raise CaptureError(
                        f"schema {self.schema!r} of {database_name(self._conn)} captures"
                        f" {meta['tables'].replace(',', ', ')} for client {meta['client_code']}, not"
                        f" {', '.join(sorted(self.spec.tables))} for client {self.spec.client_code}: give this source"
                        " its own --slot, or run --teardown on that one first"
                    )
                self._epoch = meta["epoch"]
                for table in self._tables:
                    self._install_table(cur, table)
            self._conn.commit()
        except psycopg2.errors.InsufficientPrivilege as exc:
            self._conn.rollback()
            self._conn.autocommit = True
            raise CaptureError(
                f"role {self._user()!r} may not set up the capture in {database_name(self._conn)}"
                f" ({first_line(exc)}): run --setup as the tables' owner, with CREATE on the database"
            ) from None
        except BaseException:
            self._conn.rollback()
            raise
        finally:
            self._conn.autocommit = True

    def _user(self) -> str:
        with self._conn.cursor() as cur:
            cur.execute("SELECT current_user")
            return str(cur.fetchone()[0])

    def _try_run_lock(self, cur: Any) -> bool:
        cur.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (f"webhook_manager_capture:{self.schema}:run",))
        return bool(cur.fetchone()[0])

    def _install_table(self, cur: Any, table: Table) -> None:
        q = self._q
        function_name = f"capture:{table.name}"
        function = f"{q}.{quote_ident(self._conn, function_name)}"

        # The row-id column is named directly, and the row becomes `json` (not jsonb, which rejects some
        # values json holds). Should anything still fail (the column renamed or dropped, say), the statement's
        # rows are recorded without row id and data: the application's write never fails because of capture.
        def row_id(alias: str) -> str:
            return f"{alias}.{quote_ident(self._conn, table.row_id_column)}::text" if table.row_id_column else "NULL"

        data = "row_to_json(webhook_manager_new.*)" if self.spec.data == "row" else "NULL"
        into = f"INSERT INTO {q}.outbox (table_name, action, row_id, data)"
        name = _literal(table.name)

        def insert(action: str, rows: str, alias: str, rid: str, row: str) -> str:
            return (
                f" BEGIN {into} SELECT {name}, '{action}', {rid}, {row} FROM {rows} {alias};"
                f" EXCEPTION WHEN OTHERS THEN {into} SELECT {name}, '{action}', NULL, NULL FROM {rows} {alias}; END;"
            )

        new, old = "webhook_manager_new", "webhook_manager_old"
        body = (
            f" BEGIN IF TG_OP = 'INSERT' THEN {insert('insert', 'new_rows', new, row_id(new), data)}"
            f" ELSIF TG_OP = 'UPDATE' THEN {insert('update', 'new_rows', new, row_id(new), data)}"
            f" ELSIF TG_OP = 'DELETE' THEN {insert('delete', 'old_rows', old, row_id(old), 'NULL')}"
            f" ELSE {into} VALUES ({name}, 'delete', NULL, NULL); END IF;"
            f" PERFORM pg_notify({_literal(self.schema)}, ''); RETURN NULL; END "
        )
        cur.execute(
            "SELECT oid, prosrc FROM pg_proc WHERE proname = %s AND pronamespace = %s::regnamespace",
            (function_name, self._q),
        )
        found = cur.fetchone()
        if found is None or found[1] != body:
            # SECURITY DEFINER: the application's roles need no rights on the capture's schema.
            cur.execute(
                f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER"
                f" SET search_path = pg_catalog, pg_temp AS $fn${body}$fn$"
            )
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
            if not self._try_run_lock(cur):
                raise CaptureBusy(f"another process captures schema {self.schema!r} of {self.spec.describe()}")
        self._install()
        with self._conn.cursor() as cur:
            cur.execute(f"LISTEN {self._q}")
        return self._key(self._epoch)

    def _key(self, epoch: str) -> str:
        """The store's key of the position of this schema's set-up ``epoch``."""
        with self._conn.cursor() as cur:
            cur.execute("SELECT system_identifier FROM pg_control_system()")
            (system,) = cur.fetchone()
        return f"postgres-trigger:{system}:{database_name(self._conn)}:{self.schema}:{epoch}"

    def row_ids(self) -> dict[str, bool]:
        """The triggers read the row-id column from the new rows, or the old ones for a delete."""
        return {t.name: t.row_id_column is not None for t in self._tables}

    def resume(self, position: str | None) -> None:
        done = int(position) if position else 0
        with self._conn.cursor() as cur:
            cur.execute(f"DELETE FROM {self._q}.outbox WHERE batch <= %s", (done,))
            cur.execute(f"SELECT DISTINCT batch FROM {self._q}.outbox WHERE batch IS NOT NULL ORDER BY batch")
            self._pending = [row[0] for row in cur.fetchall()]

    def acknowledge(self, ack: Any) -> None:
        with self._conn.cursor() as cur:
            cur.execute(f"DELETE FROM {self._q}.outbox WHERE batch <= %s", (int(ack),))

    def pending_changes(self) -> int:
        """Changes in the outbox not yet read (for the capture's metrics)."""
        with self._conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {self._q}.outbox WHERE batch IS NULL")
            (count,) = cur.fetchone()
        return int(count)

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
        changes = Changes()
        add = changes.add
        for _, table, action, rid, data, ms in rows:
            add(table, action, rid or 0, ms, None if data is None else json_or_text(data))
        return Batch(changes, str(number), ack=number)
