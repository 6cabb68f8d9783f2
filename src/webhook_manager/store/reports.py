"""The store's read-only reports, for metrics and the ``status`` command: what waits, how delivery went. Kept
apart from :mod:`.sql_store`'s verbs, which change things; like them, nothing here is SQL."""

from __future__ import annotations

from webhook_manager.domain.model import Backlog
from webhook_manager.store.dialect import Connector, Db


class Reports:
    """The report verbs of :class:`~webhook_manager.store.sql_store.SqlStore`, over its connector."""

    _c: Connector

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
