"""Capture's metrics, for every kind of source: changes read, events kept and dropped, and the lag, as
``/metrics`` shows them (docs/metrics.md)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.capture_apps import KINDS, AppDb, app_database
from tests.integration.pipeline_helpers import add_configuration
from tests.waiting import wait_until_async
from webhook_manager.capture.source import source_for
from webhook_manager.capture.supervisor import prepare_source, run_capture
from webhook_manager.domain.errors import StoreUnavailable
from webhook_manager.observability.metrics import Metrics
from webhook_manager.store import Store

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(params=KINDS)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AppDb]:
    with app_database(request.param, tmp_path) as app:
        yield app


async def scrape(metrics: Metrics, store: Store) -> Samples:
    text = (await metrics.exposition(store, lambda: 0)).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_capture_counts_changes_kept_and_dropped_and_its_lag(app: AppDb, store: Store) -> None:
    await asyncio.to_thread(app.create_product_table)
    await add_configuration(store, "https://receiver.example/hook")  # product inserts only: updates are dropped
    spec = app.spec()
    source = spec.label
    metrics = Metrics()
    await prepare_source(spec, lambda: contextlib.nullcontext(store))
    await asyncio.to_thread(
        app.executemany, "INSERT INTO product (id, name) VALUES (?, ?)", [(i, "a") for i in range(1, 31)]
    )
    await asyncio.to_thread(app.execute, "UPDATE product SET name = 'b' WHERE id <= 5")
    task = asyncio.create_task(run_capture(spec, store, "UTC", lambda: None, metrics))
    try:
        samples: Samples = {}

        async def caught_up() -> bool:
            nonlocal samples
            samples = await scrape(metrics, store)
            captured = samples.get(("webhook_manager_captured_changes_total", (("source", source),)))
            lag = samples.get(("webhook_manager_capture_lag_seconds", (("source", source),)))
            return captured == 35 and lag == 0

        async with asyncio.timeout(30):
            await wait_until_async(caught_up, what=lambda: f"35 changes captured and no lag: {samples}")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert samples[("webhook_manager_events_received_total", (("source", "capture"),))] == 35
    assert samples[("webhook_manager_events_recorded_total", (("source", "capture"),))] == 30
    assert samples[("webhook_manager_events_dropped_total", (("source", "capture"),))] == 5
    behind = samples.get(("webhook_manager_capture_changes_behind", (("source", source),)))
    # outbox sources count what waits in them (nothing, once drained); a slot or a binlog cannot tell
    assert behind == (0 if app.kind in ("sqlite", "postgres-trigger") else None)
    # once the capture stops, its lag is no longer shown
    gone = await scrape(metrics, store)
    assert ("webhook_manager_capture_lag_seconds", (("source", source),)) not in gone


def test_an_outbox_source_counts_the_changes_not_yet_read(tmp_path: Path) -> None:
    with app_database("sqlite", tmp_path) as app:
        app.create_product_table()
        spec = app.spec()
        reader = source_for(spec)
        reader.open()
        try:
            reader.setup()
            app.executemany("INSERT INTO product (id, name) VALUES (?, ?)", [(i, "a") for i in range(1, 36)])
            reader.claim()
            reader.resume(None)
            assert reader.pending_changes() == 35  # type: ignore[attr-defined]
            batch = reader.read(20, 0)
            assert batch is not None
            assert len(batch.changes) == 20
            assert reader.pending_changes() == 15  # type: ignore[attr-defined]
        finally:
            reader.close()


class FailingStore:
    """The store, but recording captured changes fails while ``failing`` is set (an outage of the store)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.failing = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def record_captured(self, *args: Any, **kwargs: Any) -> int:
        if self.failing:
            raise StoreUnavailable("store unavailable: the test's outage")
        return await self._store.record_captured(*args, **kwargs)


async def test_the_lag_grows_while_changes_cannot_be_recorded_and_is_0_once_they_are(app: AppDb, store: Store) -> None:
    await asyncio.to_thread(app.create_product_table)
    await add_configuration(store, "https://receiver.example/hook")
    spec = app.spec()
    metrics = Metrics()
    await prepare_source(spec, lambda: contextlib.nullcontext(store))
    await asyncio.to_thread(
        app.executemany, "INSERT INTO product (id, name) VALUES (?, ?)", [(i, "a") for i in range(1, 11)]
    )
    outage = FailingStore(store)
    task = asyncio.create_task(run_capture(spec, cast(Store, outage), "UTC", lambda: None, metrics))
    lag_key = ("webhook_manager_capture_lag_seconds", (("source", spec.label),))
    captured_key = ("webhook_manager_captured_changes_total", (("source", spec.label),))
    try:
        samples: Samples = {}

        async def lagging() -> bool:
            nonlocal samples
            samples = await scrape(metrics, store)
            return (samples.get(lag_key) or 0) >= 0.5

        async with asyncio.timeout(30):
            await wait_until_async(lagging, what=lambda: f"a lag of 0.5 s while the store is out: {samples}")
        assert samples.get(captured_key, 0) == 0  # nothing recorded: nothing counted

        outage.failing = False

        async def caught_up() -> bool:
            nonlocal samples
            samples = await scrape(metrics, store)
            return samples.get(captured_key) == 10 and samples.get(lag_key) == 0

        async with asyncio.timeout(30):
            await wait_until_async(caught_up, what=lambda: f"10 changes recorded and no lag: {samples}")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
