from __future__ import annotations

import contextlib

import orjson

from webhook_manager.delivery.batching import plan_batches
from webhook_manager.delivery.retry import MAX_RETRY_AFTER_S, next_try_at, parse_retry_after
from webhook_manager.domain.model import PendingBundle


def bundle(seq: int, count: int, created: int = 0, processed: int = 0) -> PendingBundle:
    return PendingBundle(seq, created, processed, count, orjson.dumps([seq * 100_000 + i for i in range(count)]))


def test_full_batches_go_and_the_rest_waits_for_the_linger() -> None:
    plan = plan_batches([bundle(1, 250, created=1000)], max_events=100, linger_ms=20, now_ms=1010)
    assert [len(b) for b in plan.batches] == [100, 100]
    assert plan.advances == {1: 200}
    assert plan.wake_at_ms == 1020
    later = plan_batches([bundle(1, 250, created=1000, processed=200)], max_events=100, linger_ms=20, now_ms=1020)
    assert [len(b) for b in later.batches] == [50]
    assert later.advances == {1: 250}
    assert later.wake_at_ms is None


def test_batches_span_bundles_in_order() -> None:
    bundles = [bundle(1, 30, created=0), bundle(2, 50, created=5), bundle(3, 40, created=9)]
    plan = plan_batches(bundles, max_events=100, linger_ms=0, now_ms=10)
    assert [len(b) for b in plan.batches] == [100, 20]
    assert plan.batches[0] == bundles[0].items + bundles[1].items + bundles[2].items[:20]
    assert plan.advances == {1: 30, 2: 50, 3: 40}


def test_an_incomplete_read_holds_the_tail_back() -> None:
    plan = plan_batches([bundle(1, 130)], max_events=100, linger_ms=0, now_ms=10, complete=False)
    assert [len(b) for b in plan.batches] == [100]
    assert plan.advances == {1: 100}


def test_at_most_max_batches() -> None:
    plan = plan_batches([bundle(1, 1000)], max_events=100, linger_ms=0, now_ms=0, max_batches=3)
    assert len(plan.batches) == 3
    assert plan.advances == {1: 300}


def test_5000_events_make_exactly_50_batches_of_one_event_makes_5000() -> None:
    assert len(plan_batches([bundle(1, 5000)], max_events=100, linger_ms=0, now_ms=0, max_batches=10**6).batches) == 50
    assert len(plan_batches([bundle(1, 5000)], max_events=1, linger_ms=0, now_ms=0, max_batches=10**6).batches) == 5000


def test_retries_back_off_exponentially_with_jitter() -> None:
    middle = lambda low, high: (low + high) / 2  # noqa: E731
    assert next_try_at(1, retries=3, delay_s=10, now_ms=0, uniform=middle) == 10_000
    assert next_try_at(2, retries=3, delay_s=10, now_ms=0, uniform=middle) == 20_000
    assert next_try_at(3, retries=3, delay_s=10, now_ms=0, uniform=middle) == 40_000
    assert next_try_at(4, retries=3, delay_s=10, now_ms=0, uniform=middle) is None
    assert next_try_at(1, retries=0, delay_s=10, now_ms=0) is None
    low = next_try_at(1, retries=1, delay_s=10, now_ms=0, uniform=lambda a, b: a)
    high = next_try_at(1, retries=1, delay_s=10, now_ms=0, uniform=lambda a, b: b)
    assert (low, high) == (8000, 12000)


def test_retry_after_replaces_the_backoff_up_to_an_hour() -> None:
    assert next_try_at(1, retries=1, delay_s=10, now_ms=0, retry_after_s=120) == 120_000
    assert next_try_at(1, retries=1, delay_s=10, now_ms=0, retry_after_s=10**6) == MAX_RETRY_AFTER_S * 1000
    assert next_try_at(2, retries=1, delay_s=10, now_ms=0, retry_after_s=5) is None
    assert parse_retry_after("120", 0) == 120
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480 - 60) == 60
    assert parse_retry_after("soon", 0) is None
    assert parse_retry_after(None, 0) is None
    assert parse_retry_after("\u00b2", 0) is None  # a Unicode digit is not delta-seconds


def test_bundles_past_the_last_batch_are_never_decoded() -> None:
    bundles = [bundle(1, 300), bundle(2, 300)]
    plan_batches(bundles, max_events=100, linger_ms=0, now_ms=0, max_batches=3)
    assert bundles[1]._items is None


async def test_a_cancel_always_ends_the_wait_even_as_the_event_fires() -> None:
    import asyncio

    from webhook_manager.background import wait_or_timeout

    for _ in range(50):
        event = asyncio.Event()
        task = asyncio.create_task(wait_or_timeout(event, 10))
        await asyncio.sleep(0)  # not synchronisation: one turn of the loop, so the wait has begun when the event fires
        event.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert task.cancelled()
