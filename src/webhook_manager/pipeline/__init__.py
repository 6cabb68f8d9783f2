"""The long-running loops: batcher (events → webhooks), dispatcher (webhooks → POSTs), purger (retention)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from webhook_manager.capture.runner import run_capture
from webhook_manager.capture.spec import CaptureSpec
from webhook_manager.errors import CaptureError
from webhook_manager.pipeline.batcher import Batcher
from webhook_manager.pipeline.dispatcher import Dispatcher
from webhook_manager.pipeline.egress import Egress
from webhook_manager.pipeline.purger import Purger
from webhook_manager.settings import Settings
from webhook_manager.store import Store
from webhook_manager.timefmt import now_ms

log = logging.getLogger("webhook_manager.pipeline")

SHUTDOWN_GRACE_S = 5.0


class Pipeline:
    """Batcher, dispatcher and purger over one store, started and stopped together."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.egress = Egress(
            timeout_s=settings.delivery_timeout_s,
            accept_any_2xx=settings.accept_any_2xx,
            allow_private=settings.allow_private_endpoints,
        )
        self.dispatcher = Dispatcher(store, settings, self.egress)
        self.batcher = Batcher(store, settings, on_formed=self.dispatcher.notify)
        self.purger = Purger(store, settings)
        self._settings = settings
        self._tasks: list[asyncio.Task[None]] = []

    def events_recorded(self) -> None:
        """Called after events are stored, so they are batched without waiting for the next poll."""
        self.batcher.notify()

    def webhooks_due(self) -> None:
        """Called after a webhook is made due (resend), so it is sent without waiting for the next poll."""
        self.dispatcher.notify()

    async def start(self, *, single_process: bool) -> None:
        """Start the loops. On a single-process store, leases left by a process that died are dropped first,
        so webhooks that were in flight are tried again."""
        await self.egress.start()
        if single_process:
            released = await self.store.release_leases(now_ms())
            if released:
                log.info("%d webhooks were in flight when the service last stopped; trying them again", released)
        await self.store.watch(self._woken)
        self._tasks = [
            asyncio.create_task(self.batcher.run(), name="batcher"),
            asyncio.create_task(self.dispatcher.run(), name="dispatcher"),
            asyncio.create_task(self.dispatcher.run_flusher(), name="attempt-log"),
            asyncio.create_task(self.purger.run(), name="purger"),
        ]
        self._tasks += [
            asyncio.create_task(self._capture(spec), name=f"capture {spec.describe()}")
            for spec in self._settings.capture
        ]

    async def _capture(self, spec: CaptureSpec) -> None:
        """Run one ``[[capture]]`` source for as long as the pipeline runs; one that cannot work as configured
        (checked at start, but a table can be dropped later) is logged and tried again now and then."""
        while True:
            try:
                await run_capture(spec, self.store, self._settings.timezone, self.events_recorded)
                return
            except CaptureError as exc:
                log.error("capture of %s stopped: %s; trying again in %.0f s", spec.describe(), exc.message, 60)
                await asyncio.sleep(60)

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
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        try:
            await self.dispatcher.drain(SHUTDOWN_GRACE_S)
        finally:
            await self.egress.close()


async def run_worker(settings: Settings) -> None:
    """The ``worker`` command: the pipeline alone until SIGTERM or SIGINT, then a clean stop."""
    import signal

    from webhook_manager.capture.runner import check_sources
    from webhook_manager.store import migrated_store

    await check_sources(settings.capture)
    async with migrated_store(settings.database_url) as store:
        pipeline = Pipeline(store, settings)
        await pipeline.start(single_process=settings.database_url.startswith("sqlite:"))
        log.info("webhook-manager worker running on %s", settings.database_url.split("@")[-1])
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await pipeline.stop()
