"""Captured changes → the events a store records (docs/capture.md). Pure.

A source reads changes in commit order and hands them over in batches, each with the position after its last
change. A batch becomes one :class:`~webhook_manager.domain.model.CapturedGroup` per table and action (events of one
subject keep their order), cut into bundles of at most 10 000 events like a recording call.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from webhook_manager.domain.errors import InvalidInput
from webhook_manager.domain.exact_json import may_hold_big_int
from webhook_manager.domain.model import CapturedGroup
from webhook_manager.domain.timefmt import TimestampFormatter
from webhook_manager.ingest.event_input import MAX_ITEMS, MAX_ROW_ID, items_json


class Change(NamedTuple):
    """One changed row, as a source read it."""

    table: str
    action: str
    row_id: Any
    """The row-id column's value as the source gave it (an integer, or text holding one); :func:`row_id` makes
    it an event's ``rowId``."""
    committed_ms: int
    """When the change was committed (or, where the source cannot see the commit, made), in ms since the
    epoch."""
    data: Any
    """The row as JSON for ``data = "row"``, else None."""


class Changes:
    """The changes of one batch, grouped by table and action as they come, each group in the order read.

    Sources :meth:`add` every change; :func:`to_groups` makes the events. Reading one yields :class:`Change`
    values. A change is kept as a plain tuple, not as a :class:`Change`: a tuple subclass stays tracked by the
    garbage collector, which then walks every change of a batch again and again, halving a capture's rate.
    """

    __slots__ = ("_count", "_subjects")

    def __init__(self) -> None:
        self._subjects: dict[tuple[str, str], list[tuple[Any, int, Any]]] = {}
        self._count = 0

    @classmethod
    def of(cls, changes: Iterable[Change]) -> Changes:
        """The changes given, in their order."""
        collected = cls()
        for change in changes:
            collected.add(*change)
        return collected

    def add(self, table: str, action: str, row_id: Any, committed_ms: int, data: Any) -> None:
        """One more change (see :class:`Change` for what each is)."""
        rows = self._subjects.get((table, action))
        if rows is None:
            rows = self._subjects[(table, action)] = []
        rows.append((row_id, committed_ms, data))
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Change]:
        for (table, action), rows in self._subjects.items():
            for rid, committed_ms, data in rows:
                yield Change(table, action, rid, committed_ms, data)

    def commit_span(self) -> tuple[int | None, int | None]:
        """The commit times of the oldest and the newest change (each subject's first and last, as changes are
        in the order read), None when there are none."""
        subjects = [rows for rows in self._subjects.values() if rows]
        if not subjects:
            return None, None
        return min(rows[0][1] for rows in subjects), max(rows[-1][1] for rows in subjects)

    def subjects(self) -> Iterable[tuple[tuple[str, str], list[tuple[Any, int, Any]]]]:
        """(table, action) → its changes as (row id, commit ms, data), in the order read."""
        return self._subjects.items()


@dataclass(slots=True)
class Batch:
    """Changes read from a source, and the position to store with them; ``ack`` is the source's own note of
    what to release once they are recorded (outbox rows to clear, an LSN to confirm)."""

    changes: Changes
    position: str
    ack: Any = None
    groups: list[CapturedGroup] = field(default_factory=list)
    count: int = 0
    """How many changes it holds (set when ``changes`` become ``groups``)."""
    newest_ms: int | None = None
    """The commit time of its newest change, as the source gives it (for the capture's lag)."""


def json_or_text(text: str | bytes) -> Any:
    """A JSON document from a database as a value. Numbers beyond what orjson reads exactly (integers beyond
    64 bits, numbers beyond the range of a double, NaN) become their text, and a document it cannot read at all
    (nesting too deep) stays text as a whole, so one odd value never stops a capture."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    else:
        if not may_hold_big_int(text):  # orjson reads such an integer as a float
            return value
    try:
        return json.loads(text, parse_int=_int_or_text, parse_float=_float_or_text, parse_constant=str)
    except (ValueError, RecursionError):
        return text if isinstance(text, str) else text.decode(errors="replace")


def _int_or_text(text: str) -> int | str:
    number = int(text)
    return number if -(2**63) <= number < 2**64 else text


def _float_or_text(text: str) -> float | str:
    number = float(text)
    return number if math.isfinite(number) else text


def row_id(value: Any) -> int:
    """A row-id column's value as an event's ``rowId``: a whole number from 0 to 2^63-1, else 0."""
    if type(value) is int:
        return value if 0 <= value <= MAX_ROW_ID else 0
    if isinstance(value, str) and value.isdigit() and len(value) <= 19:
        number = int(value)
        return number if number <= MAX_ROW_ID else 0
    return 0


def to_groups(changes: Changes, formatter: TimestampFormatter) -> list[CapturedGroup]:
    """The changes as wire-form items (``rowId``, ``timestamp``, ``data``), one group per table and action,
    cut into bundles of at most 10 000."""
    groups: list[CapturedGroup] = []
    for (table, action), rows in changes.subjects():
        items = [
            {
                "rowId": rid if type(rid) is int and 0 <= rid <= MAX_ROW_ID else row_id(rid),
                "timestamp": formatter(committed_ms),
                "data": data,
            }
            for rid, committed_ms, data in rows
        ]
        for start in range(0, len(items), MAX_ITEMS):
            chunk = items[start : start + MAX_ITEMS]
            groups.append(CapturedGroup(table, action, _items_json(chunk), len(chunk)))
    return groups


def _items_json(items: list[dict[str, Any]]) -> bytes:
    try:
        return items_json(items)
    except InvalidInput:
        # A JSON column nested deeper than a webhook body can carry: keep the event, without its data.
        for item in items:
            try:
                items_json([item])
            except InvalidInput:
                item["data"] = None
        return items_json(items)
