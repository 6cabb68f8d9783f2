"""Running one capture source: a thread reads changes, the event loop records them, exactly once.

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
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from webhook_manager.capture.changes import Batch, Changes, to_groups
from webhook_manager.capture.source import Source, watched_tables
from webhook_manager.domain.timefmt import TimestampFormatter, now_ms
from webhook_manager.observability.metrics import NO_METRICS, CaptureState, Metrics
from webhook_manager.store import Store

BATCH_LIMIT = 20_000
READ_WAIT_S = 0.2
QUEUE_DEPTH = 2
COUNT_EVERY_S = 5.0
"""A source that can count the changes waiting in it (``pending_changes``) is asked at most this often."""

_END = object()
T = TypeVar("T")


class Pump:
    """The reading thread of one source, and the loop side that records what it reads."""

    def __init__(
        self,
        source: Source,
        key: str,
        store: Store,
        timezone: str,
        on_recorded: Callable[[], None],
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._source = source
        self._metrics = metrics
        self._label = source.spec.label
        self._lag = Lag()
        self._counted_at = -COUNT_EVERY_S
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
        lag = self._lag
        self._metrics.watch_capture(self._label, CaptureState(lag.seconds, lambda: lag.waiting))
        failed = True
        try:
            while True:
                item = await self._queue.get()
                if item is _END:
                    failed = False
                    return
                if isinstance(item, BaseException):
                    raise item
                batch: Batch = item
                at = now_ms()
                # a batch that only moves the position (the source is idle) is nothing behind
                committed = batch.newest_ms if batch.count else at
                kept = await self._store.record_captured(
                    client_code, key, position, batch.position, batch.groups, at, committed_ms=committed
                )
                position = batch.position
                self._acks.append(batch.ack)
                self._room.release()
                lag.recorded(batch.newest_ms)
                self._metrics.changes_captured(self._label, batch.count)
                self._metrics.events_in("capture", batch.count, kept)
                if kept:
                    self._on_recorded()
        except asyncio.CancelledError:
            failed = False  # stopped: its series go
            raise
        finally:
            if failed:  # its series stay, the lag growing, until a capture of the source runs again
                lag.down()
            else:
                self._metrics.watch_capture(self._label, None)
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
                self._count_waiting()
                batch = source.read(BATCH_LIMIT, READ_WAIT_S)
                if batch is None:
                    self._lag.read_nothing()
                    self._room.release()
                    continue
                batch.count = len(batch.changes)
                oldest_ms, batch.newest_ms = batch.changes.commit_span()
                self._lag.read(oldest_ms, batch.count)
                batch.groups = to_groups(batch.changes, self._formatter)
                batch.changes = Changes()
                self._put(batch)
        except BaseException as exc:  # handed to the loop, which decides
            self._put(exc)
        else:
            self._put(_END)

    def _count_waiting(self) -> None:
        """Ask the source how many changes wait in it, at most every COUNT_EVERY_S (on the reading thread: the
        source's connection is this thread's)."""
        count = getattr(self._source, "pending_changes", None)
        if count is None or not self._metrics.enabled or time.monotonic() - self._counted_at < COUNT_EVERY_S:
            return
        self._counted_at = time.monotonic()
        self._lag.waiting = count()

    def _put(self, item: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)


class Lag:
    """How far behind its source a capture is, for its metrics. The reading thread says what it read, the loop
    what it recorded (deque appends and pops, and plain assignments, are safe across the two).

    The lag is 0 while the last read found nothing new and everything read is recorded; with batches read and
    not yet recorded, it is the age (by commit time) of the oldest change among them; otherwise (changes
    streaming in) the age of the newest change recorded. Once the capture has failed, it is at least the time
    since it failed, until a capture of the source runs again.
    """

    def __init__(self) -> None:
        self._unrecorded: deque[int | None] = deque()  # the oldest commit time of each batch read, not recorded
        self._recorded_ms: int | None = None
        self._idle = False
        self._down_ms: int | None = None
        self.waiting: int | None = None
        """Changes waiting in the source (where it can tell): what it last counted, less what was read since."""

    def read(self, oldest_ms: int | None, count: int) -> None:
        self._idle = False
        self._unrecorded.append(oldest_ms)
        if self.waiting is not None:
            self.waiting = max(self.waiting - count, 0)

    def read_nothing(self) -> None:
        self._idle = True
        if self.waiting is not None:
            self.waiting = 0

    def recorded(self, newest_ms: int | None) -> None:
        self._unrecorded.popleft()
        if newest_ms is not None:
            self._recorded_ms = newest_ms

    def down(self) -> None:
        self._down_ms = now_ms()

    def seconds(self) -> float:
        now = now_ms()
        since: int | None = None
        if self._unrecorded:
            since = next((ms for ms in list(self._unrecorded) if ms is not None), None)
        elif not self._idle:
            since = self._recorded_ms
        if self._down_ms is not None:
            since = self._down_ms if since is None else min(since, self._down_ms)
        return 0.0 if since is None else max(now - since, 0) / 1000


async def blocking(fn: Callable[..., T], *args: Any) -> T:
    """``fn`` on a thread; a cancel waits for it to finish first, so nothing it opens is left behind after
    the source is closed."""
    future = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await future
        raise


async def capture_once(
    source: Source, store: Store, timezone: str, on_recorded: Callable[[], None], metrics: Metrics = NO_METRICS
) -> None:
    """Open ``source``, go on from its stored position, and record until cancelled or it fails."""
    try:
        await blocking(source.open)
        key = await blocking(source.claim)
        # what this source watches, for the webhook-type catalogue: its captor knows, whichever process that is
        watched = watched_tables(source.spec, await blocking(source.row_ids))
        await store.describe_capture(key, source.spec.client_code, watched, now_ms())
        position = await store.capture_position(key)
        await blocking(source.resume, position)
        await Pump(source, key, store, timezone, on_recorded, metrics).run(position)
    finally:
        await blocking(source.close)
