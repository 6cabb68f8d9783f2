"""What a store adapter supplies to the one store logic (:mod:`.sql_store`): named SQL queries and a way to
run them.

An adapter is a *dialect*: its named queries and a :class:`Connector` that runs a verb's steps on a
connection (:class:`Db`). Queries whose SQL is the same on both dialects are written once, in
``queries/shared.sql``; ``queries/<dialect>.sql`` holds the rest, each dialect the same names laid out by
aggregate in the same order. Every query takes its arguments as ``$1 … $n`` in the same order on both, so the
logic that calls them is written once. A list argument reaches SQLite as a JSON array (read it with ``json_each``) and
PostgreSQL as an array; :meth:`Db.execute_rows` reaches SQLite as ``executemany`` and PostgreSQL as one
statement over ``unnest`` of each column.

A verb's steps are ``async`` functions of a :class:`Db`. On SQLite they run on the store's own threads, where
every step returns at once; they must await nothing but their ``Db`` (no sleeps, no other I/O).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from importlib import resources
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

Row = Any
"""A row read by position: a tuple on SQLite, an ``asyncpg.Record`` on PostgreSQL."""

Steps = Callable[["Db"], Coroutine[Any, Any, T]]
"""What a verb does with a connection."""

_NAME = re.compile(r"^-- name: ([a-z_]+)\s*$", re.MULTILINE)


class DuplicateKey(Exception):
    """A write broke a uniqueness rule; the logic turns it into the domain's error."""


class Db(Protocol):
    """One connection, running the dialect's named queries."""

    async def fetch(self, query: str, *args: Any) -> list[Row]:
        """Every row of ``query``."""
        ...

    async def fetch_one(self, query: str, *args: Any) -> Row | None:
        """The first row of ``query``, or None."""
        ...

    async def fetch_value(self, query: str, *args: Any) -> Any:
        """The first column of the first row of ``query``, or None when there is no row."""
        ...

    async def execute(self, query: str, *args: Any) -> int:
        """Run ``query``; return how many rows it changed."""
        ...

    async def execute_rows(self, query: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run ``query`` once for each of ``rows`` (on PostgreSQL: once, over arrays of each column)."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[None]:
        """One unit of a :meth:`Connector.steps` run: its own transaction on PostgreSQL; on SQLite the run is
        one transaction already (there is one writer), so this adds nothing."""
        ...

    async def run_script(self, script: str) -> None:
        """Run a migration script inside the current transaction."""
        ...


class Connector(Protocol):
    """Connection handling of one store: where and how a verb's steps run."""

    dialect: str
    """The name of the dialect's query and migration files: ``sqlite`` or ``postgres``."""

    single_process: bool
    """True when one process at a time uses the store, so leases found at start belong to a dead one."""

    units_commit: bool
    """True when each unit of a :meth:`steps` run (each :meth:`Db.transaction`) commits by itself; False when
    the run is one transaction, committed at its end."""

    async def read(self, steps: Steps[T]) -> T:
        """Run ``steps`` on a connection that sees committed data; they must not write."""
        ...

    async def write(self, steps: Steps[T], *, durable: bool = True) -> T:
        """Run ``steps`` in one transaction. ``durable=False``: the commit need not reach the disk before the
        answer (a lease lost with the machine only means a webhook is tried again)."""
        ...

    async def write_one(self, steps: Steps[T]) -> T:
        """Run ``steps`` that make one write statement, atomic by itself: a write like any other on SQLite; on
        PostgreSQL without BEGIN and COMMIT around it (one round trip, not three, on the hot path of events in)."""
        ...

    async def steps(self, steps: Steps[T]) -> T:
        """Run ``steps`` as several small transactions, each opened with :meth:`Db.transaction`."""
        ...

    async def watch(self, wake: Callable[[str], None]) -> None:
        """Call ``wake("events")`` or ``wake("webhooks")`` when another process announces them, where the store
        can tell."""
        ...

    async def close(self) -> None:
        """Release connections and threads."""
        ...

    def write_problem(self) -> str | None:
        """Why a write failed in the last few seconds (:class:`WriteFailures`), or None."""
        ...

    disk_reserve_bytes: int
    """Free space new events leave on the store's disk for the pipeline (0: the store does not watch its disk)."""

    def intake_problem(self, pending_bytes: int) -> str | None:
        """Why new events cannot be taken now, or None: the disk's free space is below the reserve plus room
        to form the ``pending_bytes`` of events not yet formed into webhooks."""
        ...


class WriteFailures:
    """A connector's last failed write, remembered for :data:`KEPT_S` seconds, so readiness can tell that
    writes fail even when its own small probe gets through (a full disk has room for one row, not a batch)."""

    KEPT_S = 5.0

    def __init__(self) -> None:
        self._at = -math.inf
        self._why = ""

    def note(self, why: str) -> None:
        self._at, self._why = time.monotonic(), why

    def recent(self) -> str | None:
        return self._why if time.monotonic() - self._at < self.KEPT_S else None


def read_queries(file: str) -> dict[str, str]:
    """The named queries of ``queries/<file>.sql``: each starts at a ``-- name: <name>`` line and runs to the
    next; comment lines are kept out of the SQL."""
    text = resources.files("webhook_manager.store.queries").joinpath(f"{file}.sql").read_text(encoding="utf-8")
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        sql = "\n".join(line for line in body.splitlines() if not line.lstrip().startswith("--")).strip()
        if name in queries:
            raise ValueError(f"queries/{file}.sql names {name!r} twice")
        if not sql:
            raise ValueError(f"queries/{file}.sql: {name!r} has no SQL")
        queries[name] = sql
    return queries


def load_queries(dialect: str) -> dict[str, str]:
    """Every query of ``dialect``: those of ``queries/shared.sql`` and of ``queries/<dialect>.sql``, a name
    in only one of the two."""
    shared, own = read_queries("shared"), read_queries(dialect)
    both = sorted(shared.keys() & own.keys())
    if both:
        raise ValueError(f"queries/{dialect}.sql names {both[0]!r}, which is in queries/shared.sql already")
    return shared | own


def migrations(dialect: str) -> list[tuple[int, str]]:
    """The schema's versions in order, as (version, SQL script), from ``migrations/<dialect>/NNNN_*.sql``."""
    folder = resources.files(f"webhook_manager.store.migrations.{dialect}")
    found = [
        (int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found)
