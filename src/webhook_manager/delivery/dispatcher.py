"""The dispatcher: due webhooks → one POST each, tries logged, next try or final status."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable
from typing import TypeVar

from webhook_manager.background import wait_or_timeout
from webhook_manager.delivery.egress import Egress
from webhook_manager.delivery.retry import next_try_at
from webhook_manager.delivery.signing import standard_headers
from webhook_manager.domain.clock import SYSTEM_CLOCK, Clock
from webhook_manager.domain.model import AttemptOutcome, DueWebhook
from webhook_manager.settings import Settings
from webhook_manager.store import Store

log = logging.getLogger("webhook_manager.dispatcher")
T = TypeVar("T")

IDLE_POLL_S = 0.1  # retries coming due and webhooks formed by other processes are found this often
CLAIM_BATCH = 256
LEASE_MARGIN_S = 10.0
TAKE_OVER_AFTER_S = 10.0
"""A lease that ran out is taken over only by a process that has reached the store without a failure for this
long: after an outage every live holder has written its outcomes by then (it retries each second), so only
the webhooks of a process that died are tried again."""
SLOW_CALL_S = 2.0
"""A store call that took longer than this counts as an outage that ended when it returned: an outage may hang
calls (packets dropped) rather than fail them."""
ERROR_PAUSE_S = 1.0
FLUSH_BATCH = 256
FLUSH_WAIT_S = 0.003


class Dispatcher:
    """Claims due webhooks and sends them, at most ``max_in_flight`` at once and ``max_in_flight_per_endpoint``
    to any one endpoint, so a slow endpoint holds only its own share; outcomes are written in batches."""

    def __init__(self, store: Store, settings: Settings, egress: Egress, clock: Clock = SYSTEM_CLOCK) -> None:
        self._store = store
        self._clock = clock
        self._settings = settings
        self._egress = egress
        # A try ends within the timeout and is logged within milliseconds; past the lease, another process
        # may take the webhook over (its holder is taken for dead).
        self._lease_ms = int((settings.delivery_timeout_s + LEASE_MARGIN_S) * 1000)
        self._refill_at = settings.max_in_flight_per_endpoint * 3 // 4
        self._in_flight: Counter[str] = Counter()  # claimed and not ended, per endpoint
        self._total = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._outcomes: list[AttemptOutcome] = []
        # Claimed by this process and not yet logged: never tried again by it, whatever their lease says.
        self._unsettled: set[int] = set()
        self._reached_since_ms: int | None = None  # since when the store has answered without a failure
        self._outcome_ready = asyncio.Event()
        self._wake = asyncio.Event()

    def notify(self) -> None:
        """Webhooks were formed or resent: look now."""
        self._wake.set()

    @property
    def in_flight(self) -> int:
        """Tries started and not yet ended."""
        return self._total

    async def claim_and_send(self) -> int:
        """Start a try for each due webhook there is room for; return how many started."""
        room = self._settings.max_in_flight - self._total
        if room <= 0:
            return 0
        now_ms = self._clock.now_ms()
        reached = self._reached_since_ms
        due = await self._reaching(
            self._store.claim_due_webhooks(
                now_ms,
                min(room, CLAIM_BATCH),
                self._lease_ms,
                self._in_flight,
                self._settings.max_in_flight_per_endpoint,
                take_over=reached is not None and now_ms - reached >= TAKE_OVER_AFTER_S * 1000,
            )
        )
        # One of ours whose lease ran out while its outcome could not be written: claiming it again only renewed
        # its lease; the outcome is written when the store takes it.
        due = [webhook for webhook in due if webhook.seq not in self._unsettled]
        for webhook in due:
            self._unsettled.add(webhook.seq)
            self._in_flight[webhook.endpoint] += 1
            self._total += 1
            task = asyncio.create_task(self._try(webhook))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(due)

    async def _try(self, webhook: DueWebhook) -> None:
        settings = self._settings
        started_s, started_ms = time.perf_counter(), self._clock.now_ms()
        try:
            headers = {}
            if settings.signature_headers:
                headers = standard_headers(webhook.secret, webhook.id, started_ms // 1000, webhook.payload)
            answer = await self._egress.post(webhook.endpoint, webhook.payload, headers)
        finally:
            left = self._in_flight[webhook.endpoint] = self._in_flight[webhook.endpoint] - 1
            if left <= 0:
                del self._in_flight[webhook.endpoint]
            self._total -= 1
            # Claim again once a quarter of the endpoint's share is free, not after every try: one claim then
            # brings many webhooks. (Other endpoints are woken by new webhooks, or found by the idle poll.)
            if left <= self._refill_at:
                self._wake.set()
        duration_ms = int((time.perf_counter() - started_s) * 1000)
        sent = not answer.error
        next_due = None
        if not sent:
            next_due = next_try_at(
                webhook.round_tries + 1,
                retries=settings.retries,
                delay_s=settings.retry_delay_s,
                now_ms=self._clock.now_ms(),
                retry_after_s=answer.retry_after_s,
            )
        self._outcomes.append(
            AttemptOutcome(webhook.seq, started_ms, duration_ms, answer.status, answer.error, sent, next_due)
        )
        self._outcome_ready.set()

    async def flush(self) -> int:
        """Write the outcomes gathered so far; return how many."""
        outcomes, self._outcomes = self._outcomes, []
        self._outcome_ready.clear()
        if outcomes:
            try:
                await self._reaching(self._store.record_attempts(outcomes))
            except BaseException:
                self._outcomes[:0] = outcomes  # keep them for the next flush
                self._outcome_ready.set()
                raise
            self._unsettled.difference_update(o.webhook_seq for o in outcomes)
        return len(outcomes)

    async def _reaching(self, call: Awaitable[T]) -> T:
        """``call``'s result, noting whether the store answered, and in time (for :data:`TAKE_OVER_AFTER_S`)."""
        started_ms = self._clock.now_ms()
        try:
            result = await call
        except Exception:
            self._reached_since_ms = None
            raise
        now_ms = self._clock.now_ms()
        if self._reached_since_ms is None or now_ms - started_ms > SLOW_CALL_S * 1000:
            self._reached_since_ms = now_ms
        return result

    async def run_once(self) -> int:
        """Claim, send and log everything due now, and wait for those tries; return how many were tried."""
        tried = 0
        while started := await self.claim_and_send():
            tried += started
            await asyncio.gather(*self._tasks)
            await self.flush()
        return tried

    async def run_flusher(self) -> None:
        """Write outcomes as they come, in batches, until cancelled."""
        while True:
            await self._outcome_ready.wait()
            if len(self._outcomes) < FLUSH_BATCH:
                # A moment's wait turns a stream of outcomes into few transactions (each one an fsync).
                await asyncio.sleep(FLUSH_WAIT_S)
            try:
                await self.flush()
            except Exception:
                log.exception("logging tries failed; trying again")
                await asyncio.sleep(ERROR_PAUSE_S)

    async def run(self) -> None:
        """Send webhooks until cancelled."""
        while True:
            self._wake.clear()
            try:
                started = await self.claim_and_send()
            except Exception:
                log.exception("claiming webhooks failed; trying again")
                await asyncio.sleep(ERROR_PAUSE_S)
                continue
            if started and self._total < self._settings.max_in_flight:
                continue
            await wait_or_timeout(self._wake, IDLE_POLL_S)

    async def drain(self, timeout_s: float) -> None:
        """Let tries in flight end (up to ``timeout_s``) and write their outcomes."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)
        await self.flush()
