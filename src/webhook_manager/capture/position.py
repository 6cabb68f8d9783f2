"""Where a transaction-log source stands (PostgreSQL logical replication, the MySQL binlog). Pure.

A source hands changes over in batches that may cut a large transaction, so its position is a transaction
*boundary* and how many changes of the transaction there are already *taken* (recorded in the store):
``"<boundary>:<taken>"``, where ``taken`` is :data:`DONE` when the transaction is taken whole. The logical
source's boundary is the transaction's commit LSN; the MySQL source's is the binlog file and offset where the
open transaction began (or, with :data:`DONE`, where the last one ended). A source resuming from a position
skips what is taken, so a capture killed mid-transaction loses and doubles nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

DONE = -1
"""``taken`` of a position whose transaction is recorded whole."""


@dataclass(frozen=True, slots=True)
class TransactionPosition:
    """A transaction boundary, and how many changes of the transaction there are taken (:data:`DONE`: all)."""

    boundary: str
    taken: int = DONE

    @classmethod
    def parse(cls, text: str) -> TransactionPosition:
        """The position stored as ``"<boundary>:<taken>"`` (the boundary may hold colons itself)."""
        boundary, _, taken = text.rpartition(":")
        return cls(boundary, int(taken))

    def __str__(self) -> str:
        return f"{self.boundary}:{self.taken}"

    @property
    def whole(self) -> bool:
        """True when the transaction at the boundary is taken whole (or, for a binlog, none is open there)."""
        return self.taken == DONE

    def partly_taken(self, boundary: str) -> int:
        """How many changes of the transaction at ``boundary`` a cut left taken: ``taken`` when this position
        cut that transaction, else 0."""
        return self.taken if boundary == self.boundary and self.taken != DONE else 0
