"""Retention: finished webhooks and processed events older than ``retention_hours``, and idempotency keys of
``POST /v1/event`` older than a day, are deleted a few at a time, so the purge never holds the store's writer
for long."""

from __future__ import annotations

import asyncio
import logging

from webhook_manager.domain.clock import SYSTEM_CLOCK, Clock
from webhook_manager.domain.model import IDEMPOTENCY_KEY_KEPT_MS
from webhook_manager.settings import Settings
from webhook_manager.store import Store

log = logging.getLogger("webhook_manager.purger")

PURGE_EVERY_S = 60.0
ROWS_PER_STEP = 500
PAUSE_BETWEEN_STEPS_S = 0.05


class Purger:
    """Deletes what retention no longer keeps."""

    def __init__(self, store: Store, settings: Settings, clock: Clock = SYSTEM_CLOCK) -> None:
        self._store = store
        self._clock = clock
        self._retention_ms = int(settings.retention_hours * 3_600_000)

    async def run_once(self) -> int:
        """Purge everything past retention, step by step; return the rows deleted."""
        total = 0
        while True:
            now = self._clock.now_ms()
            deleted = await self._store.purge_finished(
                now - self._retention_ms, ROWS_PER_STEP, keys_before_ms=now - IDEMPOTENCY_KEY_KEPT_MS
            )
            total += deleted
            if deleted == 0:
                return total
            await asyncio.sleep(PAUSE_BETWEEN_STEPS_S)

    async def run(self) -> None:
        """Purge every minute until cancelled."""
        while True:
            try:
                if deleted := await self.run_once():
                    log.info("purged %d finished webhooks, processed event bundles and idempotency keys", deleted)
            except Exception:
                log.exception("purging failed; trying again later")
            await asyncio.sleep(PURGE_EVERY_S)
