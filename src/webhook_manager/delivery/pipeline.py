"""The long-running loops of one process: batcher (events → webhooks), dispatcher (webhooks → POSTs),
purger (retention), started and stopped together."""

from __future__ import annotations

import asyncio
import logging

from webhook_manager.background import stop_all
from webhook_manager.delivery.batcher import Batcher
from webhook_manager.delivery.dispatcher import Dispatcher
from webhook_manager.delivery.egress import Egress
from webhook_manager.delivery.purger import Purger
from webhook_manager.domain.clock import SYSTEM_CLOCK, Clock
from webhook_manager.observability.metrics import NO_METRICS, Metrics
from webhook_manager.settings import Settings
from webhook_manager.store import Store

log = logging.getLogger("webhook_manager.pipeline")

SHUTDOWN_GRACE_S = 5.0


class Pipeline:
    """Batcher, dispatcher and purger over one store; the :class:`~webhook_manager.delivery.notifier.Notifier`
    of its process."""

    def __init__(
        self, store: Store, settings: Settings, clock: Clock = SYSTEM_CLOCK, metrics: Metrics = NO_METRICS
    ) -> None:
        self.store = store
        self.egress = Egress(
            timeout_s=settings.delivery_timeout_s,
            accept_any_2xx=settings.accept_any_2xx,
            allow_private=settings.allow_private_endpoints,
            proxy=settings.egress_proxy,
            no_proxy=settings.egress_no_proxy,
        )
        self.dispatcher = Dispatcher(store, settings, self.egress, clock, metrics)
        self.batcher = Batcher(store, settings, on_formed=self.dispatcher.notify, clock=clock, metrics=metrics)
        self.purger = Purger(store, settings, clock)
        self._clock = clock
        self._tasks: list[asyncio.Task[None]] = []

    def events_recorded(self) -> None:
        """Events were stored: batch them without waiting for the next poll."""
        self.batcher.notify()

    def webhooks_due(self) -> None:
        """A webhook was made due (resend): send it without waiting for the next poll."""
        self.dispatcher.notify()

    async def start(self) -> None:
        """Start the loops. On a single-process store, leases left by a process that died are dropped first,
        so webhooks that were in flight are tried again."""
        await self.egress.start()
        if self.store.single_process:
            released = await self.store.release_leases(self._clock.now_ms())
            if released:
                log.info("%d webhooks were in flight when the service last stopped; trying them again", released)
        await self.store.watch(self._woken)
        self._tasks = [
            asyncio.create_task(self.batcher.run(), name="batcher"),
            asyncio.create_task(self.dispatcher.run(), name="dispatcher"),
            asyncio.create_task(self.dispatcher.run_flusher(), name="attempt-log"),
            asyncio.create_task(self.purger.run(), name="purger"),
        ]

    def _woken(self, what: str) -> None:
        if what == "events":
            self.batcher.notify()
        elif what == "webhooks":
            self.dispatcher.notify()

    async def run_once(self) -> None:
        """For tests and tools: form and send everything due now, and wait for the outcomes."""
        await self.batcher.run_once()
        await self.dispatcher.run_once()

    async def stop(self) -> None:
        """Stop forming and claiming, let tries in flight end, log them, close the HTTP session."""
        await stop_all(self._tasks)
        self._tasks = []
        try:
            await self.dispatcher.drain(SHUTDOWN_GRACE_S)
        finally:
            await self.egress.close()
