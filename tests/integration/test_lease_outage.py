"""A store outage longer than a lease sends nothing twice while no process dies (docs/reliability.md).

The outage is a store whose claims and try logs fail while it is down, over each real store; time passes on a
fake clock, so a lease runs out without waiting for it."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from tests.clock import FakeClock
from tests.integration.pipeline_helpers import add_configuration, record
from tests.receiver import Receiver
from webhook_manager.delivery.batcher import Batcher
from webhook_manager.delivery.dispatcher import LEASE_MARGIN_S, TAKE_OVER_AFTER_S, Dispatcher
from webhook_manager.delivery.egress import Egress
from webhook_manager.domain.errors import StoreUnavailable
from webhook_manager.domain.model import AttemptOutcome, WebhookStatus
from webhook_manager.settings import Settings
from webhook_manager.store import Store

SETTINGS = Settings(allow_private_endpoints=True, batch_linger_ms=0, retry_delay_s=0, delivery_timeout_s=5)
LEASE_MS = int((SETTINGS.delivery_timeout_s + LEASE_MARGIN_S) * 1000)
WEBHOOKS = 5


class Outage:
    """One process's view of a store: while ``down``, its claims and try logs fail as in an outage."""

    def __init__(self, inner: Store, clock: FakeClock) -> None:
        self.inner = inner
        self.down = False
        self.hang_ms = 0  # while set, a claim hangs this long, then goes through (packets dropped, not refused)
        self._clock = clock

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable("store unavailable: connection refused")

    async def claim_due_webhooks(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        self._clock.advance(self.hang_ms)
        return await self.inner.claim_due_webhooks(*args, **kwargs)

    async def record_attempts(self, outcomes: Sequence[AttemptOutcome]) -> None:
        self._check()
        await self.inner.record_attempts(outcomes)


@pytest.fixture
async def egress() -> AsyncIterator[Egress]:
    e = Egress(timeout_s=5.0, accept_any_2xx=False, allow_private=True)
    await e.start()
    yield e
    await e.close()


async def webhooks_due(store: Store, receiver: Receiver, clock: FakeClock) -> None:
    await add_configuration(store, receiver.url("/ok/a"), clock=clock)
    await record(store, range(WEBHOOKS * 100), clock=clock)
    await Batcher(store, SETTINGS, on_formed=lambda: None, clock=clock).run_once()


def process(store: Store, egress: Egress, clock: FakeClock) -> tuple[Dispatcher, Outage]:
    view = Outage(store, clock)
    return Dispatcher(view, SETTINGS, egress, clock), view  # type: ignore[arg-type]


async def sent_once_each(store: Store, receiver: Receiver) -> None:
    ids = Counter(body["id"] for body in receiver.bodies())
    assert len(ids) == WEBHOOKS
    assert set(ids.values()) == {1}, ids
    webhooks = await store.list_webhooks("100", None, None, 100)
    assert [(w.status, w.tries) for w in webhooks] == [(WebhookStatus.SENT, 1)] * WEBHOOKS


async def test_a_holder_does_not_try_again_what_it_could_not_log(
    store: Store, receiver: Receiver, egress: Egress, clock: FakeClock
) -> None:
    await webhooks_due(store, receiver, clock)
    a, a_view = process(store, egress, clock)
    assert await a.claim_and_send() == WEBHOOKS
    a_view.down = True
    with pytest.raises(StoreUnavailable):
        await a.drain(10)  # sent, but the outcomes cannot be written
    clock.advance(LEASE_MS + 1000)  # the outage outlasts the lease
    with pytest.raises(StoreUnavailable):
        await a.claim_and_send()
    a_view.down = False
    assert await a.claim_and_send() == 0  # its own: their outcomes are on the way
    assert await a.flush() == WEBHOOKS
    await sent_once_each(store, receiver)


async def test_another_process_does_not_take_over_a_live_holders_webhooks_after_an_outage(
    store: Store, receiver: Receiver, egress: Egress, clock: FakeClock
) -> None:
    a, a_view = process(store, egress, clock)
    b, b_view = process(store, egress, clock)
    assert await b.claim_and_send() == 0  # b is up, with nothing to do yet
    await webhooks_due(store, receiver, clock)
    assert await a.claim_and_send() == WEBHOOKS
    a_view.down = b_view.down = True
    with pytest.raises(StoreUnavailable):
        await a.drain(10)
    clock.advance(LEASE_MS + 1000)
    with pytest.raises(StoreUnavailable):
        await b.claim_and_send()
    a_view.down = b_view.down = False
    assert await b.claim_and_send() == 0  # the leases ran out, but b has only just reached the store again
    assert await a.flush() == WEBHOOKS  # a writes its outcomes within a second of the store's return
    clock.advance(int(TAKE_OVER_AFTER_S * 1000))
    assert await b.claim_and_send() == 0
    await sent_once_each(store, receiver)


async def test_an_outage_that_hangs_calls_instead_of_failing_them_sends_nothing_twice(
    store: Store, receiver: Receiver, egress: Egress, clock: FakeClock
) -> None:
    a, _ = process(store, egress, clock)
    b, b_view = process(store, egress, clock)
    assert await b.claim_and_send() == 0
    await webhooks_due(store, receiver, clock)
    assert await a.claim_and_send() == WEBHOOKS
    await asyncio.gather(*a._tasks)  # sent; the outcomes wait for the flusher, which hangs like every call
    b_view.hang_ms = LEASE_MS + 1000  # b's claim hangs through the outage, then goes through
    assert await b.claim_and_send() == 0  # it asked as of before the outage
    b_view.hang_ms = 0
    assert await b.claim_and_send() == 0  # the leases ran out, but b has only just reached the store again
    assert await a.flush() == WEBHOOKS
    await sent_once_each(store, receiver)


async def test_the_webhooks_of_a_process_that_died_are_taken_over(
    store: Store, receiver: Receiver, egress: Egress, clock: FakeClock
) -> None:
    b, _ = process(store, egress, clock)
    assert await b.claim_and_send() == 0  # b reaches the store, with nothing to do yet
    await webhooks_due(store, receiver, clock)
    dead = await store.claim_due_webhooks(clock.now_ms(), 100, LEASE_MS, {}, 64)  # leased, then it died
    assert len(dead) == WEBHOOKS
    clock.advance(LEASE_MS + 1000)  # also longer than TAKE_OVER_AFTER_S since b first reached the store
    assert await b.claim_and_send() == WEBHOOKS
    await b.drain(10)
    await sent_once_each(store, receiver)
