"""The contract every capture source keeps, and the one place that knows which sources there are.

A source reads one application database. Its methods block and are called from one thread at a time (the
pump's, see :mod:`.pump`): ``open`` → ``claim`` → ``resume`` → ``read``/``acknowledge`` … → ``close``, or
``open`` → ``setup``/``teardown`` → ``close`` for ``--setup`` and ``--teardown``. What a set-up or teardown
means for the store (a start position to keep, a position to forget) comes back in :class:`Prepared`, so the
commands and the supervisor treat every source alike.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Protocol

from webhook_manager.capture.changes import Batch
from webhook_manager.capture.spec import CaptureSpec
from webhook_manager.domain.errors import CaptureError
from webhook_manager.domain.model import CapturedTable


@dataclass(frozen=True, slots=True)
class Prepared:
    """What ``--setup`` or ``--teardown`` did, and what the store is to do about it."""

    message: str
    """One line saying what was done."""
    key: str | None = None
    """The store's key of the source's position, when the store is to do anything."""
    start: str | None = None
    """Set-up: where capture starts, kept unless a position is stored already (None: from the start of what
    was set up)."""
    forget: bool = False
    """Teardown: drop the stored position (and the source's tables in the webhook-type catalogue), so a later
    set-up starts afresh."""


class Source(Protocol):
    """A database a capture reads."""

    spec: CaptureSpec

    def open(self) -> None:
        """Connect and check the configuration; CaptureError says what to change."""

    def close(self) -> None:
        """Disconnect (and let go of the source, if claimed); safe to call twice."""

    def setup(self) -> Prepared:
        """Create what the source needs (idempotent)."""
        ...

    def teardown(self) -> Prepared:
        """Remove it again; CaptureError while a capture of the source runs."""
        ...

    def claim(self) -> str:
        """Take the source for this process (CaptureBusy when another has it); return the store's key for its
        position."""
        ...

    def row_ids(self) -> dict[str, bool]:
        """Each table (by its name in events), as found by ``open``: True when every insert, update and delete
        carries the value of its row-id column, False when ``rowId`` is or may be 0."""
        ...

    def resume(self, position: str | None) -> None:
        """Continue after ``position``, the last one stored (None: from the start of what was set up)."""

    def read(self, limit: int, wait_s: float) -> Batch | None:
        """The next changes after the last batch read, at most ``limit`` (a transaction may be cut); waits up to
        ``wait_s`` when there are none."""
        ...

    def acknowledge(self, ack: Any) -> None:
        """The batch carrying ``ack`` is recorded: release what it held (outbox rows, a slot's WAL)."""

    # A source that can count the changes waiting in it (the outbox sources) has, besides:
    #     def pending_changes(self) -> int: changes not yet read (called on the reading thread, now and then)


SOURCES = {
    "sqlite": "webhook_manager.capture.sqlite_outbox:SqliteSource",
    "postgres-logical": "webhook_manager.capture.postgres_logical:PostgresLogicalSource",
    "postgres-trigger": "webhook_manager.capture.postgres_trigger:PostgresTriggerSource",
    "mysql": "webhook_manager.capture.mysql_binlog:MysqlSource",
}
"""Each source by :attr:`CaptureSpec.source` name: the class that reads it, imported only when used (a source's
database driver is an optional dependency)."""


EXTRAS = {"sqlite": None, "postgres-logical": "postgres", "postgres-trigger": "postgres", "mysql": "mysql"}
"""The optional dependencies (``pip install 'webhook-manager[EXTRA]'``) each source's driver comes with."""


def watched_tables(spec: CaptureSpec, row_ids: dict[str, bool]) -> list[CapturedTable]:
    """What a source watches, for the webhook-type catalogue: its tables, their ``row_ids``, and whether events
    carry the row."""
    return [CapturedTable(table, row_ids[table], spec.data == "row") for table in spec.tables]


def source_for(spec: CaptureSpec) -> Source:
    """The source ``spec`` names (not yet opened); CaptureError when its database driver is not installed."""
    module, _, name = SOURCES[spec.source].partition(":")
    try:
        reader = getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise CaptureError(
            f"capture from {spec.kind} needs {exc.name}, which is not installed:"
            f" pip install 'webhook-manager[{EXTRAS[spec.source]}]'"
        ) from None
    source: Source = reader(spec)
    return source
