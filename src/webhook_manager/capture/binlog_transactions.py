"""MySQL/MariaDB binlog events → the changes of whole transactions, with their positions. Pure.

:mod:`.mysql_binlog` reads the binlog with ``mysql-replication`` and turns each event it needs into one of the
small records below; :class:`TransactionAssembler` follows the transactions they make up:

- a transaction starts with a GTID event (MySQL, then a ``BEGIN``; MariaDB writes no ``BEGIN`` but says in
  its GTID event whether a group follows), a ``BEGIN`` or ``XA START``, or a statement standing alone (DDL,
  ``TRUNCATE``), and ends with an XID event, ``COMMIT``, ``ROLLBACK`` (non-transactional tables) or an XA
  prepare (changes of a two-phase transaction are taken when it is prepared);
- its row changes of the captured tables are held until it ends, then stamped with the commit time;
  ``TRUNCATE`` and a change logged as a statement become one ``delete`` with rowId 0;
- positions are :class:`~webhook_manager.capture.position.TransactionPosition`: the boundary is the binlog file
  and offset where the open transaction began (or the last one ended), and a transaction too large for one
  batch is cut, its position counting the changes taken, so a capture resuming there skips them.
"""

from __future__ import annotations

import datetime
import decimal
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook_manager.capture.changes import Changes, json_or_text
from webhook_manager.capture.position import DONE, TransactionPosition

_NAME = r"(`[^`]+`|[A-Za-z0-9_$]+)(?:\.(`[^`]+`|[A-Za-z0-9_$]+))?"
_STATEMENT = re.compile(  # the table a TRUNCATE, or a change logged as a statement, names first
    r"^\s*(?:/\*.*?\*/\s*)*(?:"
    r"truncate\s+(?:table\s+)?"
    r"|(?:insert|replace)\s+(?:(?:low_priority|delayed|high_priority|ignore)\s+)*(?:into\s+)?"
    r"|update\s+(?:(?:low_priority|ignore)\s+)*"
    r"|delete\s+(?:(?:low_priority|quick|ignore)\s+)*from\s+"
    r")" + _NAME,
    re.IGNORECASE | re.DOTALL,
)
_MULTI_TABLE_DELETE = re.compile(r"^\s*(?:/\*.*?\*/\s*)*delete\b", re.IGNORECASE | re.DOTALL)
_ROW_KEYS = {"insert": "values", "update": "after_values", "delete": "values"}


class ColumnsUnknown(RuntimeError):
    """A row event whose columns the library could not name; guessing would record wrong row ids."""


@dataclass(frozen=True, slots=True)
class Rotate:
    """The binlog goes on in another file (or the library reconnected at its own last offset)."""

    next_file: str
    position: int


@dataclass(frozen=True, slots=True)
class Gtid:
    """A transaction's GTID event; ``group``: MariaDB's flag that a group of events follows (no ``BEGIN``)."""

    group: bool


@dataclass(frozen=True, slots=True)
class Commit:
    """An XID event, or an XA prepare: the transaction ends at ``end``, committed at ``timestamp`` (seconds)."""

    end: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class Query:
    """A statement event: ``BEGIN``, ``COMMIT``, DDL, ``TRUNCATE``, or a change logged as a statement."""

    end: int
    timestamp: int
    query: str
    schema: str


@dataclass(frozen=True, slots=True)
class Rows:
    """Row changes of one table: each row as the library gives it (``values``, or ``before_values`` and
    ``after_values`` for an update)."""

    action: str  # insert | update | delete
    schema: str
    table: str
    end: int
    timestamp: int
    rows: list[dict[str, Any]]


Record = Rotate | Gtid | Commit | Query | Rows


def json_safe(value: Any) -> Any:
    """A column value as the binlog library gives it, as JSON."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, decimal.Decimal):
        return json_or_text(str(value))
    if isinstance(value, datetime.timedelta):  # a TIME column: [-]HHH:MM:SS[.ffffff]
        sign, rest = ("-", -value) if value < datetime.timedelta(0) else ("", value)
        minutes, seconds = divmod(rest.days * 86_400 + rest.seconds, 60)
        fraction = f".{rest.microseconds:06d}" if rest.microseconds else ""
        return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}:{seconds:02d}{fraction}"
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return str(value)
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return value.hex()
    if isinstance(value, set | frozenset):
        return sorted(value)
    if isinstance(value, dict):
        return {str(json_safe(k)): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return str(value)


class TransactionAssembler:
    """Follows the transactions of a binlog from a position, handing over the changes of the captured tables.

    ``tables`` maps a table as the binlog names it (schema, table) to its name in events and its row-id
    column (None: rowId 0); ``database`` is the schema a statement without one refers to.
    """

    def __init__(
        self,
        tables: Mapping[tuple[str, str], tuple[str, str | None]],
        database: str,
        *,
        with_data: bool,
        resume: TransactionPosition,
    ) -> None:
        self._tables = tables
        self._database = database
        self._with_data = with_data
        file, _, offset = resume.boundary.rpartition(":")
        self.file = file
        self.boundary = int(offset)  # where the open transaction began (or the last one ended)
        self._resume: TransactionPosition | None = resume if not resume.whole else None
        self.in_transaction = False
        self._saw_begin = False
        self._index = 0  # changes of ours in the open transaction so far
        self._skip = 0  # of which the store has this many already
        self._held: list[tuple[str, str, Any, Any, int]] = []  # (table, action, row id, data, statement ms)

    @property
    def held(self) -> int:
        """Changes of the open transaction held until it ends."""
        return len(self._held)

    def here(self) -> str:
        """The position at the last transaction boundary: where an idle source stands."""
        return str(TransactionPosition(f"{self.file}:{self.boundary}"))

    def take(self, record: Record, changes: Changes) -> str | None:
        """Follow one record, adding the changes of a transaction it ends to ``changes``; return the position
        after that transaction when it had changes of ours (others only move the position when idle)."""
        if isinstance(record, Rows):
            self._rows(record)
        elif isinstance(record, Commit):
            return self._commit(record.end, record.timestamp * 1000, changes)
        elif isinstance(record, Query):
            return self._query(record, changes)
        elif isinstance(record, Gtid):
            self._begin()
            self._saw_begin = record.group
        elif not self.in_transaction:
            # A real rotation comes only between transactions; inside one, this is the library reconnecting at
            # its own last offset, which is no place to start a transaction from.
            self.file, self.boundary = record.next_file, record.position
        return None

    def cut(self, changes: Changes) -> str:
        """A transaction too large for one batch: hand over what there is, stamped with when each statement
        ran, and return the position counting the changes taken."""
        for table, action, rid, data, when_ms in self._held:
            changes.add(table, action, rid, when_ms, data)
        self._held = []
        return str(TransactionPosition(f"{self.file}:{self.boundary}", self._index))

    def _begin(self) -> None:
        self.in_transaction, self._saw_begin, self._index, self._held = True, False, 0, []
        resume, self._resume = self._resume, None
        self._skip = resume.partly_taken(f"{self.file}:{self.boundary}") if resume is not None else 0

    def _add(self, table: str, action: str, rid: Any, data: Any, when_ms: int) -> None:
        self._index += 1
        if self._index > self._skip:
            self._held.append((table, action, rid, data, when_ms))

    def _commit(self, end: int, commit_ms: int, changes: Changes) -> str | None:
        for table, action, rid, data, _ in self._held:
            changes.add(table, action, rid, commit_ms, data)
        ours = self._index > 0
        self._held = []
        self.in_transaction = False
        self.boundary = end
        return str(TransactionPosition(f"{self.file}:{end}", DONE)) if ours else None

    def _query(self, record: Query, changes: Changes) -> str | None:
        word = record.query.strip().upper()
        if word == "BEGIN" or word.startswith(("XA START", "XA BEGIN")):
            if not self.in_transaction:
                self._begin()
            self._saw_begin = True
            return None
        if word in ("COMMIT", "ROLLBACK"):  # a ROLLBACK here leaves changes of tables that cannot roll back
            return self._commit(record.end, record.timestamp * 1000, changes)
        if word.startswith("XA END"):
            return None
        if not self.in_transaction:
            self._begin()
        table = self._statement_table(record.query, record.schema)
        if table is not None:
            self._add(table, "delete", 0, None, record.timestamp * 1000)
        if not self._saw_begin:  # a statement on its own (DDL, TRUNCATE)
            return self._commit(record.end, record.timestamp * 1000, changes)
        return None

    def _rows(self, record: Rows) -> None:
        known = self._tables.get((record.schema, record.table))
        if known is None:
            return
        if not self.in_transaction:
            self._begin()
        name, column = known
        key = _ROW_KEYS[record.action]
        rows = record.rows
        if rows and any(c.startswith("UNKNOWN_COL") for c in rows[0][key]):
            raise ColumnsUnknown(f"the binlog gave no column names for {name} at {self.file}:{record.end}")
        with_data = self._with_data and record.action != "delete"
        when_ms = record.timestamp * 1000
        for row in rows:
            values = row[key]
            rid = values.get(column) if column is not None else 0
            if rid is None and record.action == "update":  # a MINIMAL row image leaves unchanged keys out
                rid = row["before_values"].get(column)
            self._add(name, record.action, rid, json_safe(values) if with_data else None, when_ms)

    def _statement_table(self, query: str, schema: str) -> str | None:
        """The captured table a TRUNCATE or a statement-logged change names, if any."""
        match = _STATEMENT.match(query)
        if match is not None:
            first, second = (part.strip("`") if part else part for part in match.groups())
            known = self._tables.get((first, second) if second else (schema or self._database, first))
            return None if known is None else known[0]
        if _MULTI_TABLE_DELETE.match(query) is None:
            return None
        # DELETE t1, t2 FROM t1 JOIN t2 …: any captured table it names
        for first, second in re.findall(_NAME, query):
            first, second = first.strip("`"), second.strip("`")
            known = self._tables.get((first, second) if second else (schema or self._database, first))
            if known is not None:
                return known[0]
        return None
