"""The batcher: pending events → signed webhooks of at most ``batch_max_events``, per configuration."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from webhook_manager.background import wait_or_timeout
from webhook_manager.delivery.batching import plan_batches, webhooks_of
from webhook_manager.domain.clock import SYSTEM_CLOCK, Clock
from webhook_manager.domain.model import Configuration, Formed, PendingBundle, Subject
from webhook_manager.observability.logs import where
from webhook_manager.observability.metrics import NO_METRICS, Metrics
from webhook_manager.settings import Settings
from webhook_manager.store import Store

log = logging.getLogger("webhook_manager.batcher")

IDLE_POLL_S = 0.25  # events recorded by another process are found this often
ERROR_PAUSE_S = 1.0


class Batcher:
    """Forms webhooks whenever events arrive, a held-back batch comes due, or (for events recorded by other
    processes) every ``IDLE_POLL_S``."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        on_formed: Callable[[], None],
        clock: Clock = SYSTEM_CLOCK,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._store = store
        self._stored = metrics.formed if metrics.enabled else None  # counts webhooks once they are stored
        self._clock = clock
        self._max_events = settings.batch_max_events
        self._linger_ms = settings.batch_linger_ms
        self._on_formed = on_formed
        self._wake = asyncio.Event()
        # A bundle of 10 000 one-event webhooks takes ten rounds; its items are decoded once, not ten times.
        self._decoded: dict[int, list[Any]] = {}

    def notify(self) -> None:
        """Events were recorded: look now."""
        self._wake.set()

    def form(
        self, subject: Subject, bundles: list[PendingBundle], configurations: list[Configuration], complete: bool
    ) -> Formed:
        """:meth:`_form`, but a subject it cannot form is logged and left pending, never blocking the others."""
        try:
            return self._form(subject, bundles, configurations, complete)
        except Exception:
            log.exception(
                "cannot form webhooks of %s; its events stay pending",
                "/".join(subject),
                extra=where(client_code=subject[0]),
            )
            return Formed([], [], None)

    def _form(
        self, subject: Subject, bundles: list[PendingBundle], configurations: list[Configuration], complete: bool
    ) -> Formed:
        """The step run inside the store's transaction: plan batches, then one webhook per batch per
        configuration. Events of a subject with no enabled configuration left are dropped (advanced without a
        webhook), as unmatched events are on arrival."""
        for bundle in bundles:
            if bundle.seq in self._decoded:
                bundle.items = self._decoded[bundle.seq]
        plan = plan_batches(
            bundles,
            max_events=self._max_events,
            linger_ms=0 if not configurations else self._linger_ms,
            now_ms=self._clock.now_ms(),
            complete=complete,
        )
        webhooks = webhooks_of(subject, plan.batches, configurations, plan.recorded_at_ms) if configurations else []
        self._decoded = {
            b.seq: b.items for b in bundles if b.decoded and plan.advances.get(b.seq, b.processed_count) < b.event_count
        }
        return Formed(webhooks, list(plan.advances.items()), plan.wake_at_ms)

    async def run_once(self) -> tuple[int, int | None]:
        """Form what is due now, in as many runs of the store's as that takes (each forms about 1 MiB of events,
        and says the rest is due now); return (webhooks made, when a held-back batch comes due)."""
        made = 0
        while True:
            more, wake_at = await self._store.form_webhooks(self.form, self._clock.now_ms(), stored=self._stored)
            made += more
            if more:
                self._on_formed()
            if wake_at is None or wake_at > self._clock.now_ms():
                return made, wake_at

    async def run(self) -> None:
        """Form webhooks until cancelled."""
        while True:
            self._wake.clear()
            try:
                made, wake_at = await self.run_once()
            except Exception:
                log.exception("forming webhooks failed; trying again")
                await asyncio.sleep(ERROR_PAUSE_S)
                continue
            if made:
                continue  # there may be more than one round's worth
            timeout = IDLE_POLL_S
            if wake_at is not None:
                timeout = min(timeout, max(wake_at - self._clock.now_ms(), 0) / 1000)
            await wait_or_timeout(self._wake, timeout)
