"""Helpers for pipeline tests: configurations and events straight into a real store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from webhook_manager.domain.clock import SYSTEM_CLOCK, Clock
from webhook_manager.domain.ids import new_id
from webhook_manager.domain.model import Action, Configuration
from webhook_manager.domain.timefmt import TimestampFormatter
from webhook_manager.ingest.event_input import TimestampReader, parse_event_batch
from webhook_manager.store import Store


async def add_configuration(
    store: Store,
    endpoint: str,
    *,
    client_code: str = "100",
    table: str = "product",
    action: str = "insert",
    secret: str = "mySecretWord",
    disabled: bool = False,
    clock: Clock = SYSTEM_CLOCK,
    headers: Mapping[str, str] | None = None,
) -> Configuration:
    now = clock.now_ms()
    c = Configuration(
        new_id(), client_code, table, Action(action), endpoint, secret, disabled, now, now, headers=headers or {}
    )
    await store.create_configuration(c)
    return c


async def record(
    store: Store,
    row_ids: range | list[int],
    *,
    client_code: str = "100",
    table: str = "product",
    action: str = "insert",
    data: Any = None,
    timestamp: str = "2020-01-01 00:00:00",
    clock: Clock = SYSTEM_CLOCK,
) -> bool:
    """Record events the way ``POST /v1/event`` does (checked, in wire form, one bundle per 10 000), at the
    time of ``clock``."""
    recorded = False
    rows = list(row_ids)
    for start in range(0, len(rows), 10_000):
        body = {
            "table": table,
            "action": action,
            "items": [{"rowId": r, "timestamp": timestamp, "data": data} for r in rows[start : start + 10_000]],
        }
        now = clock.now_ms()
        batch = parse_event_batch(body, reader=TimestampReader("UTC"), now=TimestampFormatter("UTC"), now_ms=now)
        recorded = await store.record_events(
            client_code, table, action, orjson.dumps(batch.items), len(batch.items), now
        )
    return recorded
