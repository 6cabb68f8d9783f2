"""Capture from PostgreSQL by logical replication: a slot decoded by the built-in ``pgoutput`` plugin,
through psycopg2's replication connection.

- ``--setup`` makes a publication of the tables and a slot (both named ``spec.slot_name``); a slot keeps WAL
  on the server until it is confirmed, so it is made only on purpose and removed by ``--teardown``.
- Position: the commit LSN of the last transaction recorded, and how many of its changes when a large one
  was cut into several batches. On a restart the server resends from the slot's confirmed position, and
  what the store already has is skipped.
- The slot is confirmed (flush LSN) only after the batch is recorded; while nothing is pending, the server's
  WAL end is confirmed every few seconds, so an idle slot does not hold WAL.
- Timestamps are the commit time the server sends with each transaction.
"""

from __future__ import annotations

import contextlib
import logging
import select
import time
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.extras

from webhook_manager.capture import pgoutput
from webhook_manager.capture.changes import Batch, Changes
from webhook_manager.capture.position import DONE, TransactionPosition
from webhook_manager.capture.postgres_tables import Table, connect, database_name, find_tables, quote_ident
from webhook_manager.capture.source import Prepared
from webhook_manager.capture.spec import CaptureSpec
from webhook_manager.domain.errors import CaptureBusy, CaptureError

log = logging.getLogger("webhook_manager.capture.postgres")

HEARTBEAT_S = 5.0
MORE_OF_A_TRANSACTION_S = 0.005
ALL = 1 << 62  # changes to skip of a transaction the store has whole


def parse_position(position: str | None) -> TransactionPosition:
    """A stored position: the commit LSN of the last transaction recorded, and how many of its changes
    (``-1``: all); ``0:-1`` before the first."""
    return TransactionPosition.parse(position) if position else TransactionPosition("0")


class PostgresLogicalSource:
    """A capture source over a replication slot (see the module's notes)."""

    def __init__(self, spec: CaptureSpec) -> None:
        self.spec = spec
        self.slot = spec.slot_name
        self._conn: Any = None
        self._repl: Any = None
        self._cursor: Any = None
        self._tables: dict[int, Table] = {}
        self._relations: dict[int, tuple[pgoutput.Relation, int | None]] = {}
        self._resumed = TransactionPosition("0")
        self._resumed_lsn = 0
        # the transaction being read
        self._in_tx = False
        self._tx_lsn = 0
        self._tx_ms = 0
        self._tx_index = 0
        self._tx_skip = 0
        # confirmation
        self._emitted_end = 0
        self._acked_end = 0
        self._last_feedback = 0.0

    # lifecycle

    def open(self) -> None:
        conn = connect(self.spec)
        conn.autocommit = True
        self._conn = conn
        try:
            self._check_server()
            tables = find_tables(conn, self.spec)
            for table in tables:
                if table.replica_identity == "n" or (table.replica_identity == "d" and not table.has_primary_key):
                    raise CaptureError(
                        f"table {table.name!r} has no replica identity, so PostgreSQL would refuse its UPDATE and"
                        f" DELETE once published: give it a primary key or run"
                        f" ALTER TABLE {table.qualified} REPLICA IDENTITY FULL"
                    )
            self._tables = {t.oid: t for t in tables}
        except BaseException:
            self.close()
            raise

    def _check_server(self) -> None:
        with self._conn.cursor() as cur:
            cur.execute("SHOW wal_level")
            (wal_level,) = cur.fetchone()
            if wal_level != "logical":
                raise CaptureError(
                    f"PostgreSQL's wal_level is {wal_level!r}; logical capture needs wal_level = logical:"
                    " run ALTER SYSTEM SET wal_level = logical and restart the server (or use --mode trigger)"
                )
            cur.execute(
                "SELECT current_user, format('%I', current_user), rolreplication OR rolsuper FROM pg_roles"
                " WHERE rolname = current_user"
            )
            user, quoted, may_replicate = cur.fetchone()
            if not may_replicate:
                raise CaptureError(
                    f"role {user!r} lacks the REPLICATION attribute that logical capture needs:"
                    f" run ALTER ROLE {quoted} REPLICATION (or use --mode trigger)"
                )

    def close(self) -> None:
        for conn in (self._repl, self._conn):
            if conn is not None:
                with contextlib.suppress(psycopg2.Error):
                    conn.close()
        self._repl = self._conn = self._cursor = None

    def setup(self) -> Prepared:
        """Make (or align) the publication and make the slot."""
        tables = ", ".join(t.qualified for t in self._tables.values())
        slot = quote_ident(self._conn, self.slot)
        database = database_name(self._conn)
        with self._conn.cursor() as cur:
            cur.execute("SELECT plugin, database FROM pg_replication_slots WHERE slot_name = %s", (self.slot,))
            found = cur.fetchone()
            if found is not None and (found[0] != "pgoutput" or found[1] != database):
                raise CaptureError(
                    f"replication slot {self.slot!r} is taken (database {found[1]!r}, plugin {found[0]!r}):"
                    " give this source another --slot"
                )
            published = self._published(cur)
            wanted = {t.qualified for t in self._tables.values()}
            if published is not None and published != wanted:
                # Another source's publication: changing it would drop that source's tables.
                raise CaptureError(
                    f"publication {self.slot!r} publishes {', '.join(sorted(published)) or 'no table'}, not"
                    f" {', '.join(sorted(wanted))}: give this source another --slot, or run --teardown on that"
                    " one first"
                )
            if published is None:
                cur.execute(f"CREATE PUBLICATION {slot} FOR TABLE {tables} WITH (publish_via_partition_root = true)")
            if found is None:
                cur.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (self.slot,))
        return Prepared(
            f"{self.spec.set_up(database_name(self._conn))}: publication and replication slot {self.slot!r}"
        )

    def teardown(self) -> Prepared:
        """Drop the slot and the publication."""
        with self._conn.cursor() as cur:
            cur.execute("SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (self.slot,))
            found = cur.fetchone()
            if found is not None:
                if found[0] is not None:
                    raise CaptureError(f"replication slot {self.slot!r} is in use by process {found[0]}: stop it first")
                cur.execute("SELECT pg_drop_replication_slot(%s)", (self.slot,))
            cur.execute(f"DROP PUBLICATION IF EXISTS {quote_ident(self._conn, self.slot)}")
        return Prepared(
            f"removed replication slot and publication {self.slot!r} from {database_name(self._conn)}",
            key=self._key(),
            forget=True,
        )

    def claim(self) -> str:
        """Check the slot and publication, and start streaming from the slot (CaptureBusy when another
        process streams from it)."""
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT plugin, database FROM pg_replication_slots WHERE slot_name = %s AND slot_type = 'logical'",
                (self.slot,),
            )
            found = cur.fetchone()
            database = database_name(self._conn)
            if found is None or found[1] != database:
                raise CaptureError(
                    f"replication slot {self.slot!r} does not exist in database {database!r}:"
                    " run webhook-manager capture postgres … --setup first"
                )
            published = self._published(cur) or set()
            wanted = {t.qualified for t in self._tables.values()}
            if published != wanted:
                raise CaptureError(
                    f"publication {self.slot!r} publishes {', '.join(sorted(published)) or 'no table'}, not"
                    f" {', '.join(sorted(wanted))}: run webhook-manager capture postgres … --teardown, then"
                    " --setup with these tables (or give this source another --slot)"
                )
        key = self._key()
        self._repl = connect(self.spec, connection_factory=psycopg2.extras.LogicalReplicationConnection)
        self._cursor = self._repl.cursor()
        try:
            self._cursor.start_replication(
                slot_name=self.slot,
                decode=False,
                options={"proto_version": "1", "publication_names": self.slot},
            )
        except psycopg2.errors.ObjectInUse:
            raise CaptureBusy(f"another process streams from replication slot {self.slot!r}") from None
        return key

    def _key(self) -> str:
        """The store's key of this slot's position."""
        with self._conn.cursor() as cur:
            cur.execute("SELECT system_identifier FROM pg_control_system()")
            (system,) = cur.fetchone()
        return f"postgres:{system}:{database_name(self._conn)}:{self.slot}"

    def row_ids(self) -> dict[str, bool]:
        """A delete carries only the replica identity: the row-id column must be in it."""
        return {t.name: t.row_id_in_old_row for t in self._tables.values()}

    def _published(self, cur: Any) -> set[str] | None:
        """The tables of this source's publication; None when there is none."""
        cur.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (self.slot,))
        if cur.fetchone() is None:
            return None
        cur.execute(
            "SELECT format('%%I.%%I', schemaname, tablename) FROM pg_publication_tables WHERE pubname = %s",
            (self.slot,),
        )
        return {row[0] for row in cur.fetchall()}

    def resume(self, position: str | None) -> None:
        self._resumed = parse_position(position)
        self._resumed_lsn = int(self._resumed.boundary)

    # reading

    def acknowledge(self, ack: Any) -> None:
        """Everything up to end LSN ``ack`` is recorded: confirm it to the slot."""
        if ack is not None and ack > self._acked_end:
            self._acked_end = ack
            self._feedback(ack)

    def _feedback(self, lsn: int) -> None:
        self._cursor.send_feedback(write_lsn=lsn, flush_lsn=lsn, apply_lsn=lsn, force=True)
        self._last_feedback = time.monotonic()

    def read(self, limit: int, wait_s: float) -> Batch | None:  # noqa: C901 - see below
        # One loop over the replication stream, a branch per message kind, inline: it runs once per change.
        cursor = self._cursor
        changes = Changes()
        deadline = time.monotonic() + wait_s
        # the position once this batch is recorded: ``taken`` changes of the transaction committed at ``at``
        at, taken = 0, None
        ack: int | None = None
        waited = False
        while True:
            message = cursor.read_message()
            if message is None:
                if changes or taken is not None:
                    if self._in_tx and not waited:
                        # The server is still streaming this transaction: a moment's wait makes one batch of
                        # what would otherwise be hundreds of small ones (each a store transaction).
                        waited = True
                        select.select([self._repl], [], [], MORE_OF_A_TRANSACTION_S)
                        continue
                    break  # hand over what there is rather than wait
                self._heartbeat()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                select.select([self._repl], [], [], min(remaining, HEARTBEAT_S))
                continue
            waited = False
            payload = message.payload
            tag = payload[0]
            if tag == 0x42:  # B
                self._tx_lsn, self._tx_ms = pgoutput.begin(payload)
                self._in_tx, self._tx_index = True, 0
                self._tx_skip = self._skipped(self._tx_lsn)
            elif tag == 0x43:  # C
                _, end_lsn = pgoutput.commit(payload)
                self._in_tx = False
                if changes or self._tx_index > self._tx_skip:
                    at, taken, ack = self._tx_lsn, DONE, end_lsn
                    self._emitted_end = end_lsn
                elif self._emitted_end == self._acked_end:
                    # nothing of this transaction was ours (or it was recorded before): confirm it in passing
                    self._emitted_end = self._acked_end = end_lsn
                    if time.monotonic() - self._last_feedback > HEARTBEAT_S:
                        self._feedback(end_lsn)
                if len(changes) >= limit:
                    break
            elif tag == 0x52:  # R
                rel = pgoutput.relation(payload)
                table = self._tables.get(rel.relid)
                if table is not None:
                    index = rel.columns.index(table.row_id_column) if table.row_id_column in rel.columns else None
                    self._relations[rel.relid] = (rel, index)
            elif tag in (0x49, 0x55, 0x44):  # I, U, D
                self._tx_index += 1
                if self._tx_index <= self._tx_skip:
                    continue
                self._change(payload, tag, changes)
                at, taken = self._tx_lsn, self._tx_index
                if len(changes) >= limit:
                    break
            elif tag == 0x54:  # T
                self._tx_index += 1
                if self._tx_index <= self._tx_skip:
                    continue
                for relid in pgoutput.truncated(payload):
                    table = self._tables.get(relid)
                    if table is not None:
                        changes.add(table.name, "delete", 0, self._tx_ms, None)
                at, taken = self._tx_lsn, self._tx_index
        if taken is None:
            return None
        return Batch(changes, str(TransactionPosition(str(at), taken)), ack=ack if not self._in_tx else None)

    def _skipped(self, lsn: int) -> int:
        """How many changes of the transaction committed at ``lsn`` the store has already: the server resends
        from the slot's confirmed position, which may be before what was recorded."""
        if lsn < self._resumed_lsn or (lsn == self._resumed_lsn and self._resumed.whole):
            return ALL
        return self._resumed.partly_taken(str(lsn))

    def _change(self, payload: bytes, tag: int, changes: Changes) -> None:
        known = self._relations.get(pgoutput.relid(payload))
        if known is None:
            return
        rel, index = known
        offset = pgoutput.new_tuple_offset(payload)
        action = "insert" if tag == 0x49 else "update" if tag == 0x55 else "delete"
        rid: Any = 0
        if index is not None:
            text = pgoutput.column_text(payload, offset, index)
            if text is not None:
                rid = int(text) if rel.types[index] in pgoutput.INT_TYPES else text.decode()
        data = None
        if self.spec.data == "row" and tag != 0x44:
            data = pgoutput.row(payload, offset, rel)
        changes.add(self._tables[rel.relid].name, action, rid, self._tx_ms, data)

    def _heartbeat(self) -> None:
        """While everything read is recorded and no transaction is open, confirm the server's WAL end."""
        if time.monotonic() - self._last_feedback < HEARTBEAT_S:
            return
        if not self._in_tx and self._emitted_end == self._acked_end:
            wal_end = max(self._cursor.wal_end, self._acked_end)
            self._acked_end = self._emitted_end = wal_end
            self._feedback(wal_end)
        else:
            self._feedback(self._acked_end)
