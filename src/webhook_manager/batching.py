"""Pending events of one subject → batches of at most ``max_events``. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from webhook_manager.model import PendingBundle


@dataclass
class BatchPlan:
    """Batches to send now, how far each bundle got, and when a held-back partial batch is due."""

    batches: list[list[Any]] = field(default_factory=list)
    advances: dict[int, int] = field(default_factory=dict)
    wake_at_ms: int | None = None


def plan_batches(
    bundles: Sequence[PendingBundle],
    *,
    max_events: int,
    linger_ms: int,
    now_ms: int,
    complete: bool = True,
    max_batches: int = 1000,
) -> BatchPlan:
    """Cut the unprocessed events of ``bundles`` (in recording order) into batches.

    Full batches go now. The last, partial batch goes once its oldest event has waited ``linger_ms``, and
    only when ``complete`` says no later events of this subject were left unread; otherwise it waits and
    ``wake_at_ms`` says until when. At most ``max_batches`` are planned.
    """
    plan = BatchPlan()
    current: list[Any] = []
    pieces: list[tuple[int, int]] = []  # (bundle seq, end position) of what `current` holds
    since_ms = 0
    for bundle in bundles:
        position, end = bundle.processed_count, bundle.event_count
        while position < end:
            if len(plan.batches) >= max_batches:
                return plan
            if not current:
                since_ms = bundle.created_at_ms
            take = min(max_events - len(current), end - position)
            current.extend(bundle.items[position : position + take])
            position += take
            pieces.append((bundle.seq, position))
            if len(current) == max_events:
                _commit(plan, current, pieces)
                current, pieces = [], []
    if current:
        due_ms = since_ms + linger_ms
        if complete and due_ms <= now_ms:
            _commit(plan, current, pieces)
        else:
            plan.wake_at_ms = due_ms
    return plan


def _commit(plan: BatchPlan, batch: list[Any], pieces: list[tuple[int, int]]) -> None:
    plan.batches.append(batch)
    for seq, end in pieces:
        plan.advances[seq] = end
