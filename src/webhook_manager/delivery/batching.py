"""Pending events of one subject → batches of at most ``max_events`` → webhooks, one per batch per
configuration. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from webhook_manager.delivery.payload import webhook_body
from webhook_manager.domain.ids import new_ids
from webhook_manager.domain.model import Configuration, NewWebhook, PendingBundle, Subject


@dataclass
class BatchPlan:
    """Batches to send now (with when the oldest event of each was recorded), how far each bundle got, and when
    a held-back partial batch is due."""

    batches: list[list[Any]] = field(default_factory=list)
    recorded_at_ms: list[int] = field(default_factory=list)
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
                _commit(plan, current, pieces, since_ms)
                current, pieces = [], []
    if current:
        due_ms = since_ms + linger_ms
        if complete and due_ms <= now_ms:
            _commit(plan, current, pieces, since_ms)
        else:
            plan.wake_at_ms = due_ms
    return plan


def _commit(plan: BatchPlan, batch: list[Any], pieces: list[tuple[int, int]], since_ms: int) -> None:
    plan.batches.append(batch)
    plan.recorded_at_ms.append(since_ms)
    for seq, end in pieces:
        plan.advances[seq] = end


def webhooks_of(
    subject: Subject,
    batches: Sequence[list[Any]],
    configurations: Sequence[Configuration],
    recorded_at_ms: Sequence[int] | None = None,
) -> list[NewWebhook]:
    """One webhook per batch per configuration, each with its own id and hmac, keeping the endpoint and secret
    the configuration has now, and when the batch's oldest event was recorded (``recorded_at_ms``, one per
    batch; 0 when not given)."""
    client_code, table, action = subject
    webhooks: list[NewWebhook] = []
    ids = iter(new_ids(len(batches) * len(configurations)))
    for n, batch in enumerate(batches):
        recorded = recorded_at_ms[n] if recorded_at_ms is not None else 0
        for c in configurations:
            webhook_id = next(ids)
            body = webhook_body(webhook_id, c.secret, client_code, table, action, batch)
            webhooks.append(
                NewWebhook(
                    webhook_id, c.id, client_code, table, action, c.endpoint, c.secret, len(batch), body, recorded
                )
            )
    return webhooks
