"""The ``status`` command's report (docs/commands.md): what waits in the store, how the tries of the last hour
went per endpoint, the webhooks that failed last, and how far each capture source got; as tables (rich) or as
one JSON object for scripts.

Everything is read through the store's report verbs; nothing is written. URLs are shown without credentials
(``user:password@`` is dropped) in both forms.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import orjson

from webhook_manager.domain.errors import WebhookManagerError
from webhook_manager.domain.model import Backlog, CapturePosition, EndpointReport, FailedWebhook
from webhook_manager.domain.timefmt import rfc3339_ms
from webhook_manager.observability.redaction import redacted

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from webhook_manager.store import Store

WINDOW_MS = 3_600_000
"""The endpoints' report covers the tries that started this long ago or later: the last hour."""
FAILED_SHOWN = 20
"""How many of the webhooks that failed last are shown."""


class NotMigrated(WebhookManagerError):
    """The store has no schema yet, or an old one; ``status`` only reads, so it says to migrate."""


@dataclass(frozen=True, slots=True)
class StatusReport:
    """What ``status`` shows, read from the store at ``at_ms``."""

    at_ms: int
    store: str
    """The store's URL, without credentials."""
    backlog: Backlog
    since_ms: int
    """The start of the endpoints' period (``at_ms`` less an hour)."""
    endpoints: list[EndpointReport]
    failed: list[FailedWebhook]
    captures: list[CapturePosition]


async def gather(store: Store, url: str, now_ms: int) -> StatusReport:
    """The report of ``store`` (found at ``url``) at ``now_ms``; NotMigrated when its schema is not current."""
    shown = without_credentials(url)
    missing = await store.unapplied_migrations()
    if missing:
        versions = ", ".join(map(str, missing))
        raise NotMigrated(
            f"the store {shown} has no schema yet: run `webhook-manager migrate` first"
            if missing[0] == 1
            else f"the store {shown} is not up to date (migrations {versions} not applied): run"
            " `webhook-manager migrate` first"
        )
    since_ms = now_ms - WINDOW_MS
    return StatusReport(
        at_ms=now_ms,
        store=shown,
        backlog=await store.backlog(now_ms),
        since_ms=since_ms,
        endpoints=await store.endpoint_report(since_ms),
        failed=await store.failed_webhooks(FAILED_SHOWN),
        captures=await store.capture_report(),
    )


def without_credentials(url: str) -> str:
    """``url`` without the ``user:password@`` of its authority (``https://u:p@host/x`` → ``https://host/x``):
    whatever comes before the last ``@`` between ``//`` and the first ``/``, ``?`` or ``#`` after it; and the
    values of secret query parameters (``?token=…``, ``?password=…``) as ``***``."""
    head, sep, rest = url.partition("//")
    if not sep:
        return url
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    return redacted(head + sep + rest[:end].rpartition("@")[2] + rest[end:])  # and secret query values


# JSON


def _time(ms: int | None) -> str | None:
    return None if ms is None else rfc3339_ms(ms)


def _age_s(now_ms: int, ms: int | None) -> float | None:
    """Seconds from ``ms`` to ``now_ms`` (never below 0: another machine's clock may be ahead)."""
    return None if ms is None else max(0, now_ms - ms) / 1000


def as_json(report: StatusReport) -> dict[str, Any]:
    """The report as one JSON object: stable keys, times as RFC 3339 UTC strings, ages in seconds."""
    now, b = report.at_ms, report.backlog
    return {
        "at": rfc3339_ms(now),
        "store": report.store,
        "backlog": {
            "pending_events": b.pending_events,
            "oldest_pending_event_at": _time(b.oldest_pending_event_ms),
            "oldest_pending_event_age_s": _age_s(now, b.oldest_pending_event_ms),
            "webhooks_pending": b.webhooks_pending,
            "webhooks_retrying": b.webhooks_retrying,
            "webhooks_due": b.webhooks_due,
            "webhooks_in_flight": b.webhooks_in_flight,
            "oldest_due_at": _time(b.oldest_due_ms),
            "oldest_due_age_s": _age_s(now, b.oldest_due_ms),
        },
        "endpoints_since": rfc3339_ms(report.since_ms),
        "endpoints": [
            {
                "endpoint": without_credentials(e.endpoint),
                "tries": e.tries,
                "successes": e.successes,
                "success_rate": e.success_rate,
                "p50_ms": e.p50_ms,
                "p99_ms": e.p99_ms,
                "last_failure_at": _time(e.last_failure_at_ms),
                "last_failure": e.last_failure if e.last_failure_at_ms is not None else None,
            }
            for e in report.endpoints
        ],
        "failed_webhooks": [
            {
                "id": w.id,
                "client_code": w.client_code,
                "table": w.table,
                "action": w.action,
                "endpoint": without_credentials(w.endpoint),
                "tries": w.tries,
                "last_failure": w.last_failure,
                "failed_at": rfc3339_ms(w.failed_at_ms),
            }
            for w in report.failed
        ],
        "capture_sources": [
            {
                "source": c.source,
                "client_code": c.client_code,
                "position": c.position,
                "updated_at": rfc3339_ms(c.updated_at_ms),
                "updated_age_s": _age_s(now, c.updated_at_ms),
                "lag_s": None if c.lag_ms is None else c.lag_ms / 1000,
            }
            for c in report.captures
        ],
    }


def write_json(report: StatusReport, out: IO[str] = sys.stdout) -> None:
    """Write the report as one indented JSON object and a newline."""
    out.write(orjson.dumps(as_json(report), option=orjson.OPT_INDENT_2).decode() + "\n")


# text


def age(seconds: float) -> str:
    """A short human form of a duration: ``4.2 s``, ``12 min 5 s``, ``3 h 20 min``, ``2 d 4 h``."""
    whole = int(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    if whole < 86400:
        return f"{whole // 3600} h {whole % 3600 // 60} min"
    return f"{whole // 86400} d {whole % 86400 // 3600} h"


def _when(now_ms: int, ms: int | None) -> str:
    """``2024-05-01T12:00:00.000Z (4.2 s ago)``, or empty."""
    if ms is None:
        return ""
    return f"{rfc3339_ms(ms)} ({age(max(0, now_ms - ms) / 1000)} ago)"


def _table(title: str, *columns: str, numeric: tuple[str, ...] = ()) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left", title_style="bold")
    for column in columns:
        table.add_column(column, justify="right" if column in numeric else "left", overflow="fold")
    return table


def write_text(report: StatusReport, out: IO[str] = sys.stdout) -> None:
    """Write the report as tables: backlog, endpoints of the last hour, failed webhooks, capture sources. Cut
    to the terminal's width on a terminal; at full width (no wrapping) elsewhere, for grep and files."""
    from rich.console import Console

    console = Console(
        file=out,
        width=None if out.isatty() else 10_000,
        highlight=False,
        markup=False,
        emoji=False,
    )
    now, b = report.at_ms, report.backlog
    console.print(f"webhook-manager status of {report.store} at {rfc3339_ms(now)}")
    console.print()

    backlog = _table("Backlog", "", "count", "oldest", numeric=("count",))
    backlog.add_row("events pending", str(b.pending_events), _when(now, b.oldest_pending_event_ms))
    backlog.add_row("webhooks pending", str(b.webhooks_pending), "")
    backlog.add_row("webhooks retrying", str(b.webhooks_retrying), "")
    backlog.add_row("webhooks due", str(b.webhooks_due), _when(now, b.oldest_due_ms))
    backlog.add_row("webhooks in flight", str(b.webhooks_in_flight), "")
    _print(console, backlog)

    numbers = ("tries", "success", "p50", "p99")
    endpoints = _table(
        f"Endpoints, last hour (tries since {rfc3339_ms(report.since_ms)})",
        "endpoint",
        *numbers,
        "last failure",
        "failed at",
        numeric=numbers,
    )
    for e in report.endpoints:
        endpoints.add_row(
            without_credentials(e.endpoint),
            str(e.tries),
            f"{e.success_rate:.1%}",
            f"{e.p50_ms} ms",
            f"{e.p99_ms} ms",
            e.last_failure,
            _when(now, e.last_failure_at_ms),
        )
    _print(console, endpoints, "no tries in the last hour")

    failed = _table(
        f"Failed webhooks (the last {FAILED_SHOWN})",
        "id",
        "client",
        "table",
        "action",
        "endpoint",
        "tries",
        "last failure",
        "failed at",
        numeric=("tries",),
    )
    for w in report.failed:
        failed.add_row(
            w.id,
            w.client_code,
            w.table,
            w.action,
            without_credentials(w.endpoint),
            str(w.tries),
            w.last_failure,
            _when(now, w.failed_at_ms),
        )
    _print(console, failed, "no failed webhooks")

    captures = _table("Capture sources", "source", "client", "position", "moved at", "lag then")
    for c in report.captures:
        lag = "" if c.lag_ms is None else age(c.lag_ms / 1000)
        captures.add_row(c.source, c.client_code, c.position, _when(now, c.updated_at_ms), lag)
    _print(console, captures, "no capture source has recorded anything")


def _print(console: Console, table: Table, empty: str = "") -> None:
    if not table.rows and empty:
        table.caption = empty
    console.print(table)
    console.print()
