"""The store's read-only reports, for metrics, the ``status`` command and the API's delivery reports: what waits,
how delivery went. Kept apart from :mod:`.sql_store`'s verbs, which change things; like them, nothing here is
SQL."""

from __future__ import annotations

from collections.abc import Sequence

from webhook_manager.domain.model import Backlog, CapturePosition, EndpointReport, FailedWebhook, MinuteCounts
from webhook_manager.store.dialect import Connector, Db, Row

MINUTE_MS = 60_000


class Reports:
    """The report verbs of :class:`~webhook_manager.store.sql_store.SqlStore`, over its connector."""

    _c: Connector
    _migrations: list[tuple[int, str]]

    async def backlog(self, now_ms: int) -> Backlog:
        async def read(db: Db) -> Backlog:
            events = await db.fetch_one("backlog_events")
            webhooks = await db.fetch_one("backlog_webhooks", now_ms)
            assert events is not None  # aggregates always give a row
            assert webhooks is not None
            pending, retrying, due, oldest_due, in_flight = webhooks
            return Backlog(
                pending_events=int(events[0]),
                oldest_pending_event_ms=None if events[1] is None else int(events[1]),
                webhooks_pending=int(pending),
                webhooks_retrying=int(retrying),
                webhooks_due=int(due),
                oldest_due_ms=None if oldest_due is None else int(oldest_due),
                webhooks_in_flight=int(in_flight),
            )

        return await self._c.read(read)

    async def endpoint_report(self, since_ms: int, *, client_code: str | None = None) -> list[EndpointReport]:
        async def read(db: Db) -> tuple[list[Row], list[Row]]:
            tries = await db.fetch("endpoint_tries", since_ms, client_code)
            return tries, await db.fetch("endpoint_last_failures", since_ms, client_code)

        counted, failures = await self._c.read(read)
        last_failures = {row[0]: (int(row[1]), str(row[2])) for row in failures}
        by_endpoint: dict[str, list[tuple[int, int, int]]] = {}
        for endpoint, duration_ms, tries, successes in counted:
            by_endpoint.setdefault(endpoint, []).append((int(duration_ms), int(tries), int(successes)))
        reports = []
        for endpoint, histogram in sorted(by_endpoint.items()):  # by name alike on both stores, whatever the collation
            failed_at, failure = last_failures.get(endpoint, (None, ""))
            reports.append(
                EndpointReport(
                    endpoint=endpoint,
                    tries=sum(tries for _, tries, _ in histogram),
                    successes=sum(successes for _, _, successes in histogram),
                    p50_ms=percentile(histogram, 50),
                    p99_ms=percentile(histogram, 99),
                    last_failure_at_ms=failed_at,
                    last_failure=failure,
                )
            )
        return reports

    async def webhooks_per_minute(self, client_code: str, since_ms: int, now_ms: int) -> list[MinuteCounts]:
        first, last = since_ms // MINUTE_MS, now_ms // MINUTE_MS

        async def read(db: Db) -> list[Row]:
            return await db.fetch("webhooks_per_minute", client_code, first * MINUTE_MS, (last + 1) * MINUTE_MS)

        counted = {int(minute): (int(sent), int(failed)) for minute, sent, failed in await self._c.read(read)}
        return [MinuteCounts(minute * MINUTE_MS, *counted.get(minute, (0, 0))) for minute in range(first, last + 1)]

    async def failed_webhooks(self, limit: int) -> list[FailedWebhook]:
        async def read(db: Db) -> list[Row]:
            return await db.fetch("failed_webhooks", limit)

        return [
            FailedWebhook(row[0], row[1], row[2], row[3], row[4], int(row[5]), row[6], int(row[7]))
            for row in await self._c.read(read)
        ]

    async def capture_report(self) -> list[CapturePosition]:
        async def read(db: Db) -> list[Row]:
            return await db.fetch("capture_positions")

        positions = [
            CapturePosition(row[0], row[1], row[2], int(row[3]), None if row[4] is None else int(row[4]))
            for row in await self._c.read(read)
        ]
        return sorted(positions, key=lambda p: p.source)  # by name alike on both stores, whatever the collation

    async def unapplied_migrations(self) -> list[int]:
        async def read(db: Db) -> set[int]:
            if not await db.fetch_value("has_migrations_table"):
                return set()
            return {int(row[0]) for row in await db.fetch("applied_migrations")}

        applied = await self._c.read(read)
        return [version for version, _ in self._migrations if version not in applied]


def percentile(histogram: Sequence[tuple[int, int, int]], percent: int) -> int:
    """The nearest-rank percentile of a histogram of (value, count, …) rows in ascending order of value: the
    smallest value at or below which at least ``percent`` % of the counts lie."""
    total = sum(count for _, count, *_ in histogram)
    rank = max(1, -(-total * percent // 100))  # ceil(total × percent / 100), in integers
    seen = 0
    for value, count, *_ in histogram:
        seen += count
        if seen >= rank:
            return value
    raise ValueError("an empty histogram has no percentiles")
