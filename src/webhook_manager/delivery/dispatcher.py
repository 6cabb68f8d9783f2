"""The dispatcher: due webhooks → one POST each, tries logged, next try or final status."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable
from typing import TypeVar

from webhook_manager.background import wait_or_timeout
from webhook_manager.delivery.egress import Answer, Egress
from webhook_manager.delivery.retry import next_try_at
from webhook_manager.delivery.signing import standard_headers
from webhook_manager.domain.clock import SYSTEM_CLOCK, Clock
from webhook_manager.domain.model import AttemptOutcome, DueWebhook, WebhookStatus
from webhook_manager.observability.logs import where
from webhook_manager.observability.metrics import NO_METRICS, Metrics
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

    def __init__(
        self,
        store: Store,
        settings: Settings,
        egress: Egress,
        clock: Clock = SYSTEM_CLOCK,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._store = store
        self._metrics = metrics
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
        metrics.watch_in_flight(lambda: self._total)

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
            # The configuration's custom headers (never logged), then the signatures of its current secret and
            # of a replaced one in its grace; custom headers cannot take a name the service sets.
            headers = dict(webhook.headers)
            if settings.signature_headers:
                headers.update(
                    standard_headers(
                        webhook.secret, webhook.id, started_ms // 1000, webhook.payload, webhook.extra_secrets
                    )
                )
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
        duration_s = time.perf_counter() - started_s
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
        outcome = AttemptOutcome(
            webhook.seq, started_ms, int(duration_s * 1000), answer.status, answer.error, sent, next_due
        )
        self._outcomes.append(outcome)
        self._outcome_ready.set()
        self._observe(webhook, answer, outcome, duration_s)

    def _observe(self, webhook: DueWebhook, answer: Answer, outcome: AttemptOutcome, duration_s: float) -> None:
        """Count the try, and log it: a failure at info (warning when it was the last try), a success at debug."""
        ended = None if outcome.status is WebhookStatus.RETRYING else outcome.status.value
        first_age_s = None
        if webhook.tries == 0 and webhook.recorded_at_ms is not None and answer.outcome != "blocked":
            first_age_s = (outcome.at_ms - webhook.recorded_at_ms) / 1000
        host = self._egress.host(webhook.endpoint)
        self._metrics.try_ended(answer.outcome, duration_s, host, first_age_s=first_age_s, ended=ended)
        level = logging.DEBUG if outcome.sent else logging.WARNING if ended else logging.INFO
        if not log.isEnabledFor(level):
            return
        fields = where(
            webhook_id=webhook.id,
            configuration_id=webhook.configuration_id,
            endpoint_host=host,
            client_code=webhook.client_code,
            try_number=webhook.tries + 1,
        )
        if outcome.sent:
            log.debug("webhook %s sent to %s (try %d)", webhook.id, host, webhook.tries + 1, extra=fields)
        elif ended:
            log.warning(
                "webhook %s failed: try %d to %s: %s; no tries left",
                webhook.id,
                webhook.tries + 1,
                host,
                answer.error,
                extra=fields,
            )
        else:
            wait_s = max((outcome.next_due_ms or 0) - self._clock.now_ms(), 0) / 1000
            log.info(
                "try %d of webhook %s to %s failed: %s; next try in %.1f s",
                webhook.tries + 1,
                webhook.id,
                host,
                answer.error,
                wait_s,
                extra=fields,
            )

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
