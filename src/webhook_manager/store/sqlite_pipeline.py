"""The pipeline's statements on SQLite: events in, webhooks formed, claimed, tried and logged.

Functions of a connection, run by :class:`~webhook_manager.store.sqlite.SqliteStore` inside its
transactions; each is one atomic step of the pipeline.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from webhook_manager.errors import CaptureConflict
from webhook_manager.model import (
    Attempt,
    AttemptOutcome,
    CapturedGroup,
    Configuration,
    DueWebhook,
    EventRecord,
    EventStatus,
    FormWebhooks,
    PendingBundle,
    WebhookRecord,
    WebhookStatus,
)

CONFIGURATION_COLUMNS = "id, client_code, table_name, action, endpoint, secret, disabled, created_at, updated_at"
_WEBHOOK_RECORD = "id, table_name, action, endpoint, event_count, status, tries, last_failure, created_at, processed_at"
PENDING_BUNDLES_PER_SUBJECT = 200


def record_events(
    conn: sqlite3.Connection, client_code: str, table: str, action: str, items: bytes, count: int, now_ms: int
) -> bool:
    """Store one bundle when an enabled configuration matches; False (nothing stored) otherwise."""
    matched = conn.execute(
        "SELECT 1 FROM configurations WHERE client_code = ? AND table_name = ? AND action = ? AND disabled = 0 LIMIT 1",
        (client_code, table, action),
    ).fetchone()
    if matched is None:
        return False
    conn.execute(
        "INSERT INTO event_bundles (client_code, table_name, action, event_count, items, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (client_code, table, action, count, items, now_ms),
    )
    return True


def capture_position(conn: sqlite3.Connection, source: str) -> str | None:
    row = conn.execute("SELECT position FROM capture_positions WHERE source = ?", (source,)).fetchone()
    return None if row is None else str(row[0])


def record_captured(
    conn: sqlite3.Connection,
    client_code: str,
    source: str,
    expected: str | None,
    position: str,
    groups: Sequence[CapturedGroup],
    now_ms: int,
) -> int:
    """Store captured groups and move the source's position, or raise CaptureConflict storing nothing."""
    if capture_position(conn, source) != expected:
        raise CaptureConflict(f"capture source {source!r} was recorded by another process")
    conn.execute(
        "INSERT INTO capture_positions (source, client_code, position, updated_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (source) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at",
        (source, client_code, position, now_ms),
    )
    kept = 0
    for group in groups:
        if record_events(conn, client_code, group.table, group.action, group.items, group.count, now_ms):
            kept += group.count
    return kept


def form_webhooks(conn: sqlite3.Connection, form: FormWebhooks, now_ms: int) -> tuple[int, int | None]:
    """Turn pending events into webhooks, subject by subject; return (webhooks made, next wake-up)."""
    subjects = conn.execute(
        "SELECT DISTINCT client_code, table_name, action FROM event_bundles WHERE processed_count < event_count"
    ).fetchall()
    made, wake_at = 0, None
    for client_code, table, action in subjects:
        rows = conn.execute(
            "SELECT seq, created_at, processed_count, event_count, items FROM event_bundles"
            " WHERE client_code = ? AND table_name = ? AND action = ? AND processed_count < event_count"
            " ORDER BY seq LIMIT ?",
            (client_code, table, action, PENDING_BUNDLES_PER_SUBJECT + 1),
        ).fetchall()
        complete = len(rows) <= PENDING_BUNDLES_PER_SUBJECT
        bundles = [PendingBundle(*row) for row in rows[:PENDING_BUNDLES_PER_SUBJECT]]
        configurations = [
            Configuration.from_row(row)
            for row in conn.execute(
                f"SELECT {CONFIGURATION_COLUMNS} FROM configurations"
                " WHERE client_code = ? AND table_name = ? AND action = ? AND disabled = 0 ORDER BY seq",
                (client_code, table, action),
            )
        ]
        formed = form((client_code, table, action), bundles, configurations, complete)
        conn.executemany(
            "INSERT INTO webhooks (id, client_code, configuration_id, table_name, action, endpoint, secret,"
            " event_count, payload, status, created_at, due_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
            [
                (
                    w.id,
                    w.client_code,
                    w.configuration_id,
                    w.table,
                    w.action,
                    w.endpoint,
                    w.secret,
                    w.event_count,
                    w.payload,
                    now_ms,
                    now_ms,
                )
                for w in formed.webhooks
            ],
        )
        conn.executemany(
            "UPDATE event_bundles SET processed_count = ?, processed_at = ? WHERE seq = ?",
            [(count, now_ms, seq) for seq, count in formed.advances],
        )
        made += len(formed.webhooks)
        if formed.wake_at_ms is not None and (wake_at is None or formed.wake_at_ms < wake_at):
            wake_at = formed.wake_at_ms
    return made, wake_at


def fail_unsent(conn: sqlite3.Connection, configuration_id: str, reason: str, now_ms: int) -> None:
    """End the not-in-flight unsent webhooks of a configuration as failed, saying why."""
    conn.execute(
        "UPDATE webhooks SET status = 'failed', due_at = NULL, lease_until = NULL, processed_at = ?,"
        " last_failure = ? WHERE configuration_id = ? AND due_at IS NOT NULL"
        " AND (lease_until IS NULL OR lease_until <= ?)",
        (now_ms, reason, configuration_id, now_ms),
    )


def _endpoints_with_webhooks_due(conn: sqlite3.Connection) -> list[str]:
    """Every endpoint with an unfinished webhook, found by skipping through the (endpoint, due_at) index: one
    probe per endpoint, however many webhooks wait for each."""
    return [
        endpoint
        for (endpoint,) in conn.execute(
            "WITH RECURSIVE e(endpoint) AS ("
            " SELECT min(endpoint) FROM webhooks WHERE due_at IS NOT NULL"
            " UNION ALL"
            " SELECT (SELECT min(endpoint) FROM webhooks WHERE due_at IS NOT NULL AND endpoint > e.endpoint)"
            " FROM e WHERE e.endpoint IS NOT NULL"
            ") SELECT endpoint FROM e WHERE endpoint IS NOT NULL"
        )
    ]


def claim_due_webhooks(
    conn: sqlite3.Connection,
    now_ms: int,
    limit: int,
    lease_ms: int,
    in_flight: Mapping[str, int],
    per_endpoint: int,
) -> list[DueWebhook]:
    """Lease up to ``limit`` due webhooks, none to an endpoint beyond ``per_endpoint`` tries in flight.

    A lease moves ``due_at`` to the lease's end, so a leased webhook is not due again unless its holder
    fails to log the try in time. Endpoints are visited in random order, so none waits behind another when
    ``limit`` is short. Webhooks whose configuration is gone or disabled end failed instead.
    """
    endpoints = _endpoints_with_webhooks_due(conn)
    random.shuffle(endpoints)
    rows: list[Any] = []
    for endpoint in endpoints:
        room = min(per_endpoint - in_flight.get(endpoint, 0), limit - len(rows))
        if room <= 0:
            if len(rows) >= limit:
                break
            continue
        rows += conn.execute(
            "SELECT w.seq, w.id, w.endpoint, w.payload, w.round_tries, w.secret, c.disabled"
            " FROM webhooks w LEFT JOIN configurations c ON c.id = w.configuration_id"
            " WHERE w.endpoint = ? AND w.due_at IS NOT NULL AND w.due_at <= ? ORDER BY w.due_at LIMIT ?",
            (endpoint, now_ms, room),
        ).fetchall()
    claimed, ended = [], []
    for seq, webhook_id, endpoint, payload, round_tries, secret, disabled in rows:
        if disabled is None:
            ended.append((now_ms, "configuration removed", seq))
        elif disabled:
            ended.append((now_ms, "configuration disabled", seq))
        else:
            claimed.append(DueWebhook(seq, webhook_id, endpoint, payload, secret, round_tries))
    conn.executemany(
        "UPDATE webhooks SET status = 'failed', due_at = NULL, processed_at = ?, last_failure = ? WHERE seq = ?",
        ended,
    )
    lease_end = now_ms + lease_ms
    conn.executemany(
        "UPDATE webhooks SET due_at = ?, lease_until = ? WHERE seq = ?",
        [(lease_end, lease_end, w.seq) for w in claimed],
    )
    return claimed


def record_attempts(conn: sqlite3.Connection, outcomes: Sequence[AttemptOutcome]) -> None:
    """Log each try and move its webhook on: sent, retrying (due again) or failed."""
    conn.executemany(
        "INSERT INTO attempts (webhook_seq, try, at, duration_ms, http_status, error)"
        " SELECT seq, tries + 1, ?, ?, ?, ? FROM webhooks WHERE seq = ?",
        [(o.at_ms, o.duration_ms, o.http_status, o.error, o.webhook_seq) for o in outcomes],
    )
    conn.executemany(
        "UPDATE webhooks SET tries = tries + 1, round_tries = round_tries + 1, status = ?,"
        " last_failure = CASE WHEN ? = '' THEN last_failure ELSE ? END, processed_at = ?, due_at = ?,"
        " lease_until = NULL WHERE seq = ?",
        [(_status(o), o.error, o.error, o.at_ms + o.duration_ms, o.next_due_ms, o.webhook_seq) for o in outcomes],
    )


def _status(outcome: AttemptOutcome) -> str:
    if outcome.sent:
        return WebhookStatus.SENT.value
    return WebhookStatus.RETRYING.value if outcome.next_due_ms is not None else WebhookStatus.FAILED.value


def release_leases(conn: sqlite3.Connection, now_ms: int) -> int:
    """Make every leased webhook due now: on the embedded store, a lease found at start belongs to a process
    that died, so what it had in flight is tried again."""
    return conn.execute(
        "UPDATE webhooks SET due_at = ?, lease_until = NULL WHERE lease_until IS NOT NULL AND due_at IS NOT NULL",
        (now_ms,),
    ).rowcount


def _webhook_record(row: Any) -> WebhookRecord:
    return WebhookRecord(
        id=row[0],
        table=row[1],
        action=row[2],
        endpoint=row[3],
        event_count=row[4],
        status=WebhookStatus(row[5]),
        tries=row[6],
        last_failure=row[7],
        created_at_ms=row[8],
        processed_at_ms=row[9],
    )


def list_webhooks(
    conn: sqlite3.Connection, client_code: str, table: str | None, action: str | None, limit: int
) -> list[WebhookRecord]:
    """The client's webhooks, newest first, optionally of one table and/or action."""
    where, args = "client_code = ?", [client_code]
    if table is not None:
        where, args = where + " AND table_name = ?", [*args, table]
    if action is not None:
        where, args = where + " AND action = ?", [*args, action]
    rows = conn.execute(
        f"SELECT {_WEBHOOK_RECORD} FROM webhooks WHERE {where} ORDER BY seq DESC LIMIT ?", (*args, limit)
    ).fetchall()
    return [_webhook_record(row) for row in rows]


def get_webhook(
    conn: sqlite3.Connection, client_code: str, webhook_id: str
) -> tuple[WebhookRecord, bytes, list[Attempt]] | None:
    """One of the client's webhooks with its body and tries, oldest try first."""
    row = conn.execute(
        f"SELECT {_WEBHOOK_RECORD}, payload, seq FROM webhooks WHERE id = ? AND client_code = ?",
        (webhook_id, client_code),
    ).fetchone()
    if row is None:
        return None
    attempts = [
        Attempt(*a)
        for a in conn.execute(
            "SELECT at, duration_ms, http_status, error FROM attempts WHERE webhook_seq = ? ORDER BY try", (row[11],)
        )
    ]
    return _webhook_record(row), bytes(row[10]), attempts


def resend_webhook(conn: sqlite3.Connection, client_code: str, webhook_id: str, now_ms: int) -> str | None:
    """Give a failed webhook a new round of tries; return its status before (None: no such webhook)."""
    row = conn.execute(
        "SELECT status FROM webhooks WHERE id = ? AND client_code = ?", (webhook_id, client_code)
    ).fetchone()
    if row is None:
        return None
    if row[0] == WebhookStatus.FAILED.value:
        conn.execute(
            "UPDATE webhooks SET status = 'pending', round_tries = 0, due_at = ?, lease_until = NULL WHERE id = ?",
            (now_ms, webhook_id),
        )
    return str(row[0])


def list_events(conn: sqlite3.Connection, client_code: str, table: str, action: str, limit: int) -> list[EventRecord]:
    """The subject's recorded events, newest first."""
    events: list[EventRecord] = []
    rows = conn.execute(
        "SELECT seq, event_count, items, created_at, processed_count, processed_at FROM event_bundles"
        " WHERE client_code = ? AND table_name = ? AND action = ? ORDER BY seq DESC",
        (client_code, table, action),
    )
    for seq, count, items, created_at, processed_count, processed_at in rows:
        decoded = orjson.loads(items)
        for index in range(count - 1, -1, -1):
            processed = index < processed_count
            item = decoded[index]
            events.append(
                EventRecord(
                    id=f"{seq:016x}{index:08x}",
                    table=table,
                    action=action,
                    row_id=item["rowId"],
                    status=EventStatus.PROCESSED if processed else EventStatus.PENDING,
                    timestamp=item["timestamp"],
                    created_at_ms=created_at,
                    processed_at_ms=processed_at if processed else None,
                )
            )
            if len(events) >= limit:
                return events
    return events


def purge_finished(conn: sqlite3.Connection, before_ms: int, limit: int) -> int:
    """Delete up to ``limit`` webhooks finished before ``before_ms`` (their tries go too) and as many fully
    processed bundles recorded before it; return how many rows went."""
    webhooks = conn.execute(
        "DELETE FROM webhooks WHERE seq IN (SELECT seq FROM webhooks WHERE due_at IS NULL AND processed_at < ?"
        " LIMIT ?)",
        (before_ms, limit),
    ).rowcount
    bundles = conn.execute(
        "DELETE FROM event_bundles WHERE seq IN (SELECT seq FROM event_bundles"
        " WHERE processed_count >= event_count AND processed_at < ? ORDER BY seq LIMIT ?)",
        (before_ms, limit),
    ).rowcount
    return webhooks + bundles
