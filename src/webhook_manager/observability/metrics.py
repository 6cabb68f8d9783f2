"""Prometheus metrics of one process (docs/metrics.md), made with ``prometheus_client`` in a registry of the
process's own.

Counters and histograms count what this process did; they are bumped where it happens (the events API, the
batcher, the dispatcher, capture). The store-level gauges (what waits in the store) are read from the store when
``/metrics`` is scraped, at most once every ``metrics_refresh_s``, so scrapes cost the store nothing more however
often they come; every process of a store shows the same values for them. Labels stay bounded: outcomes and
actions are fixed sets, table names and endpoint hosts are cut at :data:`MAX_LABEL_VALUES` distinct values (the
rest count as ``_other``), and the endpoint host is a label only with ``metrics_endpoint_host``. No URL, secret
or client data is ever a label.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from webhook_manager.domain.model import Backlog, NewWebhook
from webhook_manager.settings import Settings
from webhook_manager.store import Store

log = logging.getLogger("webhook_manager.metrics")

# No ``*_created`` series (the time each counter was made): they double the series and nobody graphs them.
disable_created_metrics()  # type: ignore[no-untyped-call]

MAX_LABEL_VALUES = 500
"""The most distinct values a free-form label (table, endpoint host) takes; later ones count as ``_other``."""
OTHER = "_other"
OUTCOMES = ("success", "http_4xx", "http_5xx", "http_other", "redirect", "timeout", "connection", "blocked")
"""How a try ended, as the ``outcome`` label says it: an answer (``success``; a status that is not success; a
redirect, never followed), no answer in time (``timeout``), none at all (``connection``: refused, reset, closed,
not HTTP, TLS, a name that does not resolve), or not sent (``blocked``: a private address). Egress names it
(:attr:`~webhook_manager.delivery.egress.Answer.outcome`)."""
STORE_READ_TIMEOUT_S = 2.0

TRY_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
AGE_SECONDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
EVENTS_PER_WEBHOOK = (1, 2, 5, 10, 20, 50, 100)


class BoundedLabel:
    """A free-form label value kept to at most ``limit`` distinct values."""

    def __init__(self, limit: int = MAX_LABEL_VALUES) -> None:
        self._seen: set[str] = set()
        self._limit = limit

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit:
            return OTHER
        self._seen.add(value)
        return value


@dataclass
class CaptureState:
    """How far behind one capture source is, as its pump knows it."""

    lag_s: Callable[[], float]
    """Seconds the oldest change not yet recorded may have waited (0 when the last read found the source
    drained)."""
    changes_behind: Callable[[], int | None]
    """Changes waiting in the source, where the source can tell (None otherwise)."""


class Metrics:
    """The metrics of one process. Methods are called where things happen; :meth:`exposition` renders them."""

    enabled = True

    def __init__(self, *, refresh_s: float = 5.0, endpoint_host: bool = False) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._refresh_s = refresh_s
        self._endpoint_host = endpoint_host
        self._tables = BoundedLabel()
        self._hosts = BoundedLabel()
        self.events_received = Counter(
            "webhook_manager_events_received", "Events received, by where they came from.", ["source"], registry=r
        )
        self.events_recorded = Counter(
            "webhook_manager_events_recorded",
            "Events stored (an enabled configuration matched them).",
            ["source"],
            registry=r,
        )
        self.events_dropped = Counter(
            "webhook_manager_events_dropped",
            "Events dropped because no enabled configuration matched them.",
            ["source"],
            registry=r,
        )
        self.webhooks_formed = Counter(
            "webhook_manager_webhooks_formed", "Webhooks formed, by table and action.", ["table", "action"], registry=r
        )
        self.webhook_events = Histogram(
            "webhook_manager_webhook_events", "Events per webhook formed.", buckets=EVENTS_PER_WEBHOOK, registry=r
        )
        try_labels = ["outcome", "endpoint_host"] if endpoint_host else ["outcome"]
        self.tries = Counter("webhook_manager_tries", "Tries, by how they ended.", try_labels, registry=r)
        if not endpoint_host:  # every outcome shows from the start, at 0, so rates and ratios are defined
            for outcome in OUTCOMES:
                self.tries.labels(outcome)

        self.try_duration = Histogram(
            "webhook_manager_try_duration_seconds",
            "How long a try took (connect, send, answer), by how it ended.",
            try_labels,
            buckets=TRY_SECONDS,
            registry=r,
        )
        self.first_send_age = Histogram(
            "webhook_manager_event_age_at_first_send_seconds",
            "Age of a webhook's oldest event when the webhook is first tried (recording to sending).",
            buckets=AGE_SECONDS,
            registry=r,
        )
        self.webhooks_ended = Counter(
            "webhook_manager_webhooks_ended",
            "Webhooks ended by a try of this process: sent, or failed once its tries ran out.",
            ["status"],
            registry=r,
        )
        self.captured = Counter(
            "webhook_manager_captured_changes", "Changes read from a capture source.", ["source"], registry=r
        )
        self.tries_in_flight = Gauge(
            "webhook_manager_tries_in_flight", "Tries this process has started and not yet ended.", registry=r
        )
        self._store_gauges = StoreGauges()
        r.register(self._store_gauges)
        self._captures: dict[str, CaptureState] = {}
        r.register(_CaptureCollector(self._captures))
        self._refreshing: asyncio.Task[None] | None = None
        for source in ("api", "capture"):  # every series shows from the start, at 0
            self.events_received.labels(source)
            self.events_recorded.labels(source)
            self.events_dropped.labels(source)
        self._ended = {status: self.webhooks_ended.labels(status) for status in ("sent", "failed")}
        self._try_children: dict[object, tuple[Any, Any]] = {}
        self._formed_children: dict[tuple[str, str], Any] = {}

    # what happens

    def events_in(self, source: str, received: int, recorded: int) -> None:
        """``received`` events came from ``source`` (``api`` or ``capture``), of which ``recorded`` were kept."""
        self.events_received.labels(source).inc(received)
        if recorded:
            self.events_recorded.labels(source).inc(recorded)
        if received > recorded:
            self.events_dropped.labels(source).inc(received - recorded)

    def formed(self, webhooks: Sequence[NewWebhook]) -> None:
        """Webhooks were formed (and stored)."""
        children = self._formed_children
        observe = self.webhook_events.observe
        for w in webhooks:
            child = children.get((w.table, w.action))
            if child is None:
                if len(children) > 4 * MAX_LABEL_VALUES:
                    children.clear()
                child = children[(w.table, w.action)] = self.webhooks_formed.labels(self._tables(w.table), w.action)
            child.inc()
            observe(w.event_count)

    def try_ended(
        self, outcome: str, duration_s: float, host: str, *, first_age_s: float | None, ended: str | None
    ) -> None:
        """A try ended with ``outcome`` after ``duration_s``; ``first_age_s`` is its oldest event's age when this
        was the webhook's first try; ``ended`` is ``sent`` or ``failed`` when the webhook ended with it."""
        key = (outcome, host) if self._endpoint_host else outcome
        children = self._try_children.get(key)
        if children is None:  # a try's series, looked up once (labels() costs a lock and a dict per call)
            if len(self._try_children) > 4 * MAX_LABEL_VALUES:
                self._try_children.clear()
            labels = (outcome, self._hosts(host)) if self._endpoint_host else (outcome,)
            children = self._try_children[key] = (self.tries.labels(*labels), self.try_duration.labels(*labels))
        children[0].inc()
        children[1].observe(duration_s)
        if first_age_s is not None:
            self.first_send_age.observe(max(first_age_s, 0.0))
        if ended is not None:
            self._ended[ended].inc()

    def changes_captured(self, source: str, count: int) -> None:
        """``count`` changes were read from capture ``source``."""
        self.captured.labels(source).inc(count)

    def watch_capture(self, source: str, state: CaptureState | None) -> None:
        """Show (or, with None, stop showing) the lag of a capture source this process runs."""
        if state is None:
            self._captures.pop(source, None)
        else:
            self._captures[source] = state

    def watch_in_flight(self, count: Callable[[], int]) -> None:
        """Read the tries in flight from ``count`` at each scrape."""
        self.tries_in_flight.set_function(count)

    # scraping

    async def exposition(self, store: Store, now_ms: Callable[[], int]) -> bytes:
        """The metrics in Prometheus' text format, the store-level gauges refreshed when older than
        ``metrics_refresh_s``: one store read at a time, however many scrapes come; a scrape waits for it at
        most STORE_READ_TIMEOUT_S, then goes without the gauges (the read goes on, and no other starts)."""
        reading = self._refreshing
        if self._store_gauges.stale(self._refresh_s) and (reading is None or reading.done()):
            reading = self._refreshing = asyncio.create_task(self._refresh(store, now_ms))
        if reading is not None and not reading.done():
            done, _ = await asyncio.wait({reading}, timeout=STORE_READ_TIMEOUT_S)
            if not done:
                log.warning("metrics: the store took over %.0f s to tell the backlog", STORE_READ_TIMEOUT_S)
                self._store_gauges.failed()
        return generate_latest(self.registry)

    async def _refresh(self, store: Store, now_ms: Callable[[], int]) -> None:
        at = now_ms()
        try:
            backlog = await store.backlog(at)
        except Exception as exc:  # the gauges are left out until the store answers; the scrape still works
            log.warning("metrics: cannot read the backlog from the store: %s", exc)
            self._store_gauges.failed()
        else:
            self._store_gauges.update(backlog, at)


class NoMetrics(Metrics):
    """Metrics turned off (``metrics = false``): every call does nothing."""

    enabled = False

    def __init__(self) -> None:
        pass

    def events_in(self, source: str, received: int, recorded: int) -> None:
        pass

    def formed(self, webhooks: Sequence[NewWebhook]) -> None:
        pass

    def try_ended(
        self, outcome: str, duration_s: float, host: str, *, first_age_s: float | None, ended: str | None
    ) -> None:
        pass

    def changes_captured(self, source: str, count: int) -> None:
        pass

    def watch_capture(self, source: str, state: CaptureState | None) -> None:
        pass

    def watch_in_flight(self, count: Callable[[], int]) -> None:
        pass


NO_METRICS = NoMetrics()


def metrics_of(settings: Settings) -> Metrics:
    """The metrics a process keeps under ``settings``."""
    if not settings.metrics:
        return NO_METRICS
    return Metrics(refresh_s=settings.metrics_refresh_s, endpoint_host=settings.metrics_endpoint_host)


class StoreGauges(Collector):
    """The store-level gauges, from the last backlog read; left out while the store cannot be read."""

    def __init__(self) -> None:
        self._backlog: Backlog | None = None
        self._at_ms = 0
        self._read_at = -float("inf")

    def stale(self, refresh_s: float) -> bool:
        return time.monotonic() - self._read_at >= refresh_s

    def update(self, backlog: Backlog, at_ms: int) -> None:
        self._backlog, self._at_ms, self._read_at = backlog, at_ms, time.monotonic()

    def failed(self) -> None:
        self._backlog, self._read_at = None, time.monotonic()

    def collect(self) -> Iterable[Metric]:
        b = self._backlog
        if b is None:
            return []
        return [
            _gauge("pending_events", "Events recorded and not yet in a webhook.", b.pending_events),
            _gauge(
                "webhooks_pending", "Webhooks formed and not yet tried (or in their first try).", b.webhooks_pending
            ),
            _gauge("webhooks_retrying", "Webhooks that failed a try and have another to come.", b.webhooks_retrying),
            _gauge("webhooks_due", "Webhooks due now and not being tried.", b.webhooks_due),
            _gauge("webhooks_leased", "Webhooks being tried now, by any process of the store.", b.webhooks_in_flight),
            _gauge(
                "oldest_pending_event_age_seconds",
                "Age of the oldest event not yet in a webhook (0 when there is none).",
                _age(b.oldest_pending_event_ms, self._at_ms),
            ),
            _gauge(
                "oldest_due_webhook_age_seconds",
                "How long the webhook due longest has been due (0 when none is due).",
                _age(b.oldest_due_ms, self._at_ms),
            ),
        ]


class _CaptureCollector(Collector):
    def __init__(self, captures: dict[str, CaptureState]) -> None:
        self._captures = captures

    def collect(self) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "webhook_manager_capture_lag_seconds",
            "How long the oldest change not yet recorded may have waited in the source (0 when drained).",
            labels=["source"],
        )
        behind = GaugeMetricFamily(
            "webhook_manager_capture_changes_behind",
            "Changes waiting in the source, where it can tell (outbox sources).",
            labels=["source"],
        )
        for source, state in list(self._captures.items()):
            lag.add_metric([source], state.lag_s())
            waiting = state.changes_behind()
            if waiting is not None:
                behind.add_metric([source], waiting)
        yield lag
        yield behind


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"webhook_manager_{name}", documentation, value=value)


def _age(since_ms: int | None, now_ms: int) -> float:
    return 0.0 if since_ms is None else max(now_ms - since_ms, 0) / 1000
