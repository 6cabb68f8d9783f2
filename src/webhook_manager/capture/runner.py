"""Running a capture source: a thread reads changes, the event loop records them, exactly once.

The source's connection belongs to one thread (:class:`Pump`), which reads batches, turns them into event
groups and hands them over through a short queue (two batches: reading the next overlaps recording this one).
The loop records a batch and moves the stored position in one transaction
(:meth:`~webhook_manager.store.Store.record_captured`), then tells the thread, which releases what the batch
held (clears outbox rows, confirms the LSN) before its next read. A position is therefore stored before the
source forgets anything, and a restart goes on from the stored position: nothing is lost or recorded twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

from webhook_manager.capture.changes import Batch, to_groups
from webhook_manager.capture.spec import CaptureSpec
from webhook_manager.errors import CaptureBusy, CaptureConflict, CaptureError, WebhookManagerError
from webhook_manager.payload import TimestampFormatter
from webhook_manager.store import Store
from webhook_manager.timefmt import now_ms

log = logging.getLogger("webhook_manager.capture")

BATCH_LIMIT = 20_000
READ_WAIT_S = 0.2
QUEUE_DEPTH = 2
BUSY_RETRY_S = 2.0
ERROR_RETRY_S = (1.0, 2.0, 5.0, 10.0, 30.0)


class Source(Protocol):
    """A database a capture reads; every method blocks and is called from one thread at a time."""

    spec: CaptureSpec

    def open(self) -> None:
        """Connect and check the configuration; CaptureError says what to change."""

    def close(self) -> None: ...

    def setup(self) -> str:
        """Create what the source needs; return one line saying what was done."""
        ...

    def teardown(self) -> str:
        """Remove it again; return one line saying what was done."""
        ...

    def claim(self) -> str:
        """Take the source for this process (CaptureBusy when another has it); return the store's key for
        its position."""
        ...

    def resume(self, position: str | None) -> None:
        """Continue after ``position``, the last one stored (None: from the start of what was set up)."""

    def read(self, limit: int, wait_s: float) -> Batch | None:
        """The next changes after the last batch read, at most ``limit`` (a transaction may be cut);
        waits up to ``wait_s`` when there are none."""
        ...

    def acknowledge(self, ack: Any) -> None:
        """The batch carrying ``ack`` is recorded: release what it held."""


def open_source(spec: CaptureSpec) -> Source:
    """The source for ``spec`` (not yet opened)."""
    if spec.kind == "sqlite":
        from webhook_manager.capture.sqlite import SqliteSource

        return SqliteSource(spec)
    if spec.kind == "postgres" and spec.mode == "trigger":
        from webhook_manager.capture.postgres_trigger import PostgresTriggerSource

        return PostgresTriggerSource(spec)
    if spec.kind == "postgres":
        from webhook_manager.capture.postgres_logical import PostgresLogicalSource

        return PostgresLogicalSource(spec)
    from webhook_manager.capture.mysql import MysqlSource

    return MysqlSource(spec)


def check_source(spec: CaptureSpec) -> None:
    """Open the source and close it again: CaptureError when it cannot work as configured."""
    source = open_source(spec)
    source.open()
    source.close()


async def set_up_source(spec: CaptureSpec, store: Store | None, *, teardown: bool = False) -> str:
    """``--setup`` (or ``--teardown``): make (or remove) what the source needs; one line saying what was done.

    A MySQL source makes nothing on the server: its set-up stores the binlog's current end in ``store`` as
    where capture starts (so changes from then on are captured even before the first run), and its teardown
    forgets the stored position."""

    def once() -> tuple[str, str, str | None]:
        source = open_source(spec)
        try:
            source.open()
            try:
                done = source.teardown() if teardown else source.setup()
                if spec.kind != "mysql":
                    return done, "", None
                from webhook_manager.capture.mysql import MysqlSource

                assert isinstance(source, MysqlSource)
                return done, source.key, None if teardown else source.setup_position
            finally:
                source.close()
        except WebhookManagerError:
            raise
        except Exception as exc:  # a driver's error, said in one line
            raise CaptureError(f"{spec.describe()}: {str(exc).strip().splitlines()[0]}") from exc

    done, key, start = await asyncio.to_thread(once)
    if spec.kind == "mysql":
        if store is None:
            raise ValueError("a MySQL source keeps its position in the store")
        if teardown:
            await store.forget_capture(key)
        elif start is not None and await store.capture_position(key) is None:
            await store.record_captured(spec.client_code, key, None, start, [], now_ms())
    return done


async def check_sources(specs: Iterable[CaptureSpec]) -> None:
    """:func:`check_source` each one: CaptureError (one line, naming the source) for the first that cannot
    work; a source that cannot be reached now is only logged, as the capture retries it."""
    for spec in specs:
        try:
            await asyncio.to_thread(check_source, spec)
        except CaptureError as exc:
            raise CaptureError(f"capture of {spec.describe()}: {exc.message}") from None
        except Exception as exc:
            log.warning("capture of %s: cannot check it now (%s); it will be tried again", spec.describe(), exc)


_END = object()
T = TypeVar("T")


class Pump:
    """The reading thread of one source, and the loop side that records what it reads."""

    def __init__(self, source: Source, key: str, store: Store, timezone: str, on_recorded: Callable[[], None]) -> None:
        self._source = source
        self._key = key
        self._store = store
        self._formatter = TimestampFormatter(timezone)
        self._on_recorded = on_recorded
        self._stop = threading.Event()
        self._room = threading.Semaphore(QUEUE_DEPTH)
        self._acks: deque[Any] = deque()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()

    async def run(self, position: str | None) -> None:
        """Record batches from the source until cancelled or the source fails."""
        key = self._key
        client_code = self._source.spec.client_code
        thread = threading.Thread(target=self._read_loop, name=f"capture-{key}", daemon=True)
        thread.start()
        try:
            while True:
                item = await self._queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                batch: Batch = item
                kept = await self._store.record_captured(
                    client_code, key, position, batch.position, batch.groups, now_ms()
                )
                position = batch.position
                self._acks.append(batch.ack)
                self._room.release()
                if kept:
                    self._on_recorded()
        finally:
            self._stop.set()
            self._room.release()
            await asyncio.to_thread(thread.join)

    def _read_loop(self) -> None:
        source = self._source
        try:
            while not self._stop.is_set():
                ack = None
                while self._acks:  # acknowledgements are cumulative: the last one covers the others
                    ack = self._acks.popleft() if ack is None else (self._acks.popleft() or ack)
                if ack is not None:
                    source.acknowledge(ack)
                if not self._room.acquire(timeout=READ_WAIT_S):
                    continue
                if self._stop.is_set():
                    break
                batch = source.read(BATCH_LIMIT, READ_WAIT_S)
                if batch is None:
                    self._room.release()
                    continue
                batch.groups = to_groups(batch.changes, self._formatter)
                batch.changes = []
                self._put(batch)
        except BaseException as exc:  # handed to the loop, which decides
            self._put(exc)
        else:
            self._put(_END)

    def _put(self, item: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)


async def _blocking(fn: Callable[..., T], *args: Any) -> T:
    """``fn`` on a thread; a cancel waits for it to finish first, so nothing it opens is left behind after
    the source is closed."""
    future = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await future
        raise


async def capture_once(source: Source, store: Store, timezone: str, on_recorded: Callable[[], None]) -> None:
    """Open ``source``, go on from its stored position, and record until cancelled or it fails."""
    try:
        await _blocking(source.open)
        key = await _blocking(source.claim)
        position = await store.capture_position(key)
        await _blocking(source.resume, position)
        await Pump(source, key, store, timezone, on_recorded).run(position)
    finally:
        await _blocking(source.close)


async def run_capture(
    spec: CaptureSpec, store: Store, timezone: str, on_recorded: Callable[[], None] = lambda: None
) -> None:
    """Capture ``spec`` until cancelled: stand by while another process has the source, retry after errors
    with a growing pause; CaptureError (a configuration that cannot work) ends it."""
    failures = 0
    standing_by = False
    while True:
        source = open_source(spec)
        try:
            await capture_once(source, store, timezone, on_recorded)
            return
        except CaptureError:
            raise
        except CaptureBusy as exc:
            if not standing_by:
                log.info("%s; standing by to take over", exc.message)
                standing_by = True
            await asyncio.sleep(BUSY_RETRY_S)
            continue
        except CaptureConflict as exc:
            log.warning("%s; reading again from the stored position", exc.message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            pause = ERROR_RETRY_S[min(failures, len(ERROR_RETRY_S) - 1)]
            failures += 1
            problem = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.warning("capture of %s failed (%s); trying again in %.0f s", spec.describe(), problem, pause)
            await asyncio.sleep(pause)
            continue
        failures = 0
