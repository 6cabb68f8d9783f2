"""A kept-alive connection the receiver closed (issue 11, row 8): the request goes again on a new connection,
in the same try and its time limit, and reaches the receiver once.

The race of a keep-alive running out is made exact: the receiver closes its idle connections (the FIN is sent
at once) when the client's event loop has not yet seen it, so the client still takes the connection from its
pool, as it does when the receiver's keep-alive ends just as a webhook goes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.pipeline_helpers import add_configuration, record
from tests.receiver import Receiver
from webhook_manager.delivery.egress import Answer, Egress
from webhook_manager.delivery.pipeline import Pipeline
from webhook_manager.domain.model import WebhookStatus
from webhook_manager.settings import Settings
from webhook_manager.store import Store


async def test_a_request_on_a_connection_the_receiver_closed_goes_on_a_new_one(receiver: Receiver) -> None:
    egress = Egress(timeout_s=5.0, accept_any_2xx=False, allow_private=True)
    await egress.start()
    try:
        answers, closed = [], 0
        for n in range(6):
            closed += receiver.close_kept_alive()  # the loop has not seen it: the pool still holds the connection
            answers.append(await egress.post(receiver.url("/ok/a"), b'{"n":%d}' % n, {}))
    finally:
        await egress.close()
    # The 2nd, 4th and 6th found their connection closed; one sent again has a connection of its own, closed
    # after the answer, so the request after it opens a new one.
    assert closed == 3
    assert answers == [Answer(200, "")] * 6
    assert [r.body for r in receiver.received] == [b'{"n":%d}' % n for n in range(6)]  # each once, in order


async def test_the_request_sent_again_keeps_the_time_limit_of_the_try(receiver: Receiver) -> None:
    egress = Egress(timeout_s=1.0, accept_any_2xx=False, allow_private=True)
    await egress.start()
    try:
        assert await egress.post(receiver.url("/ok/a"), b"{}", {}) == Answer(200, "")
        assert receiver.close_kept_alive() == 1
        started = time.perf_counter()
        answer = await egress.post(receiver.url("/slow/7"), b"{}", {})  # the new connection's answer is late
        elapsed_s = time.perf_counter() - started
    finally:
        await egress.close()
    assert answer == Answer(None, "timed out after 1.0 s", outcome="timeout")
    assert 0.95 <= elapsed_s <= 1.05  # one limit for the whole try, the setting exactly
    assert [r.path for r in receiver.received] == ["/ok/a", "/slow/7"]


async def test_every_webhook_goes_in_one_try_though_each_finds_its_connection_closed(
    tmp_path: Path, store: Store, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'wm.db'}",
        allow_private_endpoints=True,
        batch_linger_ms=0,
        retry_delay_s=0,
        batch_max_events=1,
        max_in_flight_per_endpoint=1,
    )
    claim = store.claim_due_webhooks

    async def claim_as_the_keep_alive_runs_out(*args: Any, **kwargs: Any) -> Any:
        due = await claim(*args, **kwargs)
        receiver.close_kept_alive()  # the dispatcher's loop sees the FIN only after the try has begun
        return due

    monkeypatch.setattr(store, "claim_due_webhooks", claim_as_the_keep_alive_runs_out)
    await add_configuration(store, receiver.url("/ok/a"))
    await record(store, range(8))
    p = Pipeline(store, settings)
    await p.egress.start()
    try:
        await p.run_once()
    finally:
        await p.egress.close()
    webhooks = await store.list_webhooks("100", None, None, 100)
    assert len(webhooks) == 8
    assert {(w.status, w.tries, w.last_failure) for w in webhooks} == {(WebhookStatus.SENT, 1, "")}
    assert sorted(receiver.tries.values()) == [1] * 8  # each webhook id arrived exactly once


async def test_a_request_written_on_a_kept_alive_connection_is_not_sent_again(receiver: Receiver) -> None:
    egress = Egress(timeout_s=5.0, accept_any_2xx=False, allow_private=True)
    await egress.start()
    try:
        assert await egress.post(receiver.url("/ok/a"), b"{}", {}) == Answer(200, "")
        # The same connection carries the next request, which the receiver reads, then it drops the connection:
        # the receiver may have acted on it, so the try fails and nothing is sent again.
        answer = await egress.post(receiver.url("/reset"), b"{}", {})
    finally:
        await egress.close()
    assert answer.status is None
    assert answer.error in ("connection reset", "connection closed before an answer")
    assert [r.path for r in receiver.received] == ["/ok/a", "/reset"]
