"""Keeping captures running: checking sources before a start, ``--setup`` and ``--teardown``, standing by
while another process captures a source, retrying after errors, and the ``[[capture]]`` sections that
``serve`` and ``worker`` run beside their pipeline."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager

from webhook_manager.background import stop_all
from webhook_manager.capture.pump import capture_once
from webhook_manager.capture.source import Prepared, Source, source_for
from webhook_manager.capture.spec import CaptureSpec
from webhook_manager.domain.errors import CaptureBusy, CaptureConflict, CaptureError, WebhookManagerError, first_line
from webhook_manager.domain.timefmt import now_ms
from webhook_manager.observability.logs import where
from webhook_manager.observability.metrics import NO_METRICS, Metrics
from webhook_manager.store import Store

log = logging.getLogger("webhook_manager.capture")

BUSY_RETRY_S = 2.0
ERROR_RETRY_S = (1.0, 2.0, 5.0, 10.0, 30.0)
MISCONFIGURED_RETRY_S = 60.0


def _at(spec: CaptureSpec) -> dict[str, object]:
    """The location fields of a capture's log lines: the source (never with a password) and its client."""
    return where(capture_source=spec.describe(), client_code=spec.client_code)


def one_line_error(spec: CaptureSpec, exc: Exception) -> CaptureError:
    """A driver's error as a CaptureError of one line naming the source (a ConnectionError names it already)."""
    if isinstance(exc, ConnectionError):
        return CaptureError(first_line(exc))
    return CaptureError(f"{spec.describe()}: {first_line(exc)}")


def check_source(spec: CaptureSpec) -> None:
    """Open the source and close it again: CaptureError when it cannot work as configured, the driver's own
    error when the database cannot be reached."""
    source = source_for(spec)
    source.open()
    source.close()


async def check_sources(specs: Iterable[CaptureSpec]) -> None:
    """:func:`check_source` each one: CaptureError (one line, naming the source) for the first that cannot
    work; a source that cannot be reached now is only logged, as the capture retries it."""
    for spec in specs:
        try:
            await asyncio.to_thread(check_source, spec)
        except CaptureError as exc:
            raise CaptureError(f"capture of {spec.describe()}: {exc.message}") from None
        except Exception as exc:
            log.warning(
                "capture of %s: cannot check it now (%s); it will be tried again", spec.describe(), exc, extra=_at(spec)
            )


async def prepare_source(
    spec: CaptureSpec,
    store: Callable[[], AbstractAsyncContextManager[Store]],
    *,
    teardown: bool = False,
) -> str:
    """``--setup`` (or ``--teardown``): make (or remove) what the source needs; one line saying what was done.
    The store is opened (with ``store()``) only when the source's answer asks for it: to keep where capture
    starts, or to forget the position."""

    def once() -> Prepared:
        source = source_for(spec)
        try:
            source.open()
            try:
                return source.teardown() if teardown else source.setup()
            finally:
                source.close()
        except WebhookManagerError:
            raise
        except Exception as exc:  # a driver's error, said in one line
            raise one_line_error(spec, exc) from exc

    prepared = await asyncio.to_thread(once)
    if prepared.key is not None and (prepared.forget or prepared.start is not None):
        async with store() as opened:
            if prepared.forget:
                await opened.forget_capture(prepared.key)
            elif prepared.start is not None and await opened.capture_position(prepared.key) is None:
                await opened.record_captured(spec.client_code, prepared.key, None, prepared.start, [], now_ms())
    return prepared.message


async def run_capture(
    spec: CaptureSpec,
    store: Store,
    timezone: str,
    on_recorded: Callable[[], None] = lambda: None,
    metrics: Metrics = NO_METRICS,
) -> None:
    """Capture ``spec`` until cancelled: stand by while another process has the source, retry after errors
    with a growing pause; CaptureError (a configuration that cannot work) ends it."""
    failures = 0
    standing_by = False
    while True:
        source: Source = source_for(spec)
        try:
            await capture_once(source, store, timezone, on_recorded, metrics)
            return
        except CaptureError:
            raise
        except CaptureBusy as exc:
            if not standing_by:
                log.info("%s; standing by to take over", exc.message, extra=_at(spec))
                standing_by = True
            await asyncio.sleep(BUSY_RETRY_S)
            continue
        except CaptureConflict as exc:
            log.warning("%s; reading again from the stored position", exc.message, extra=_at(spec))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            pause = ERROR_RETRY_S[min(failures, len(ERROR_RETRY_S) - 1)]
            failures += 1
            log.warning(
                "capture of %s failed (%s); trying again in %.0f s",
                spec.describe(),
                first_line(exc),
                pause,
                extra=_at(spec),
            )
            await asyncio.sleep(pause)
            continue
        failures = 0


class CaptureSupervisor:
    """The ``[[capture]]`` sources of a ``serve`` or ``worker`` process, each run for as long as the process
    runs; one that cannot work as configured (checked at start, but a table can be dropped later) is logged
    and tried again now and then."""

    def __init__(
        self,
        specs: Iterable[CaptureSpec],
        store: Store,
        timezone: str,
        on_recorded: Callable[[], None],
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._specs = tuple(specs)
        self._metrics = metrics
        self._store = store
        self._timezone = timezone
        self._on_recorded = on_recorded
        self._tasks: list[asyncio.Task[None]] = []

    async def _keep_running(self, spec: CaptureSpec) -> None:
        while True:
            try:
                await run_capture(spec, self._store, self._timezone, self._on_recorded, self._metrics)
                return
            except CaptureError as exc:
                log.error(
                    "capture of %s stopped: %s; trying again in %.0f s",
                    spec.describe(),
                    exc.message,
                    MISCONFIGURED_RETRY_S,
                    extra=_at(spec),
                )
                await asyncio.sleep(MISCONFIGURED_RETRY_S)

    def start(self) -> None:
        """Start every source."""
        self._tasks = [
            asyncio.create_task(self._keep_running(spec), name=f"capture {spec.describe()}") for spec in self._specs
        ]

    async def stop(self) -> None:
        """Stop every source and close its connection. What a source read and had not recorded yet is not
        acknowledged either, so the next start reads it again."""
        await stop_all(self._tasks)
        self._tasks = []
