"""The scale-out store: PostgreSQL through asyncpg, for many ``api`` and ``worker`` processes at once.

Same verbs and meaning as the SQLite adapter. What differs is how processes share work: a subject's events
are formed into webhooks under a transaction-scoped advisory lock (so batches stay whole and in order), and
due webhooks are claimed with ``FOR UPDATE SKIP LOCKED`` and a lease that moves ``due_at``: a worker that dies
leaves its webhooks to be claimed again when the lease runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson

from webhook_manager.errors import CaptureConflict, Conflict, StoreUnavailable
from webhook_manager.model import (
    Attempt,
    AttemptOutcome,
    CapturedGroup,
    Configuration,
    ConfigurationInput,
    DueWebhook,
    EventRecord,
    EventStatus,
    FormWebhooks,
    LoginFailures,
    PendingBundle,
    Session,
    User,
    WebhookRecord,
    WebhookStatus,
)

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection = PoolConnectionProxy[Any]

_COLUMNS = "id, client_code, table_name, action, endpoint, secret, disabled, created_at, updated_at"
_WEBHOOK = "id, table_name, action, endpoint, event_count, status, tries, last_failure, created_at, processed_at"
_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.exceptions.OperatorInterventionError,
)
PENDING_BUNDLES_PER_SUBJECT = 200
CHANNEL = "webhook_manager"
WATCH_RETRY_S = 1.0


def migrations() -> list[tuple[int, str]]:
    """The schema's versions in order, as (version, SQL script)."""
    folder = resources.files("webhook_manager.store.migrations.postgres")
    found = [(int(e.name.split("_", 1)[0]), e.read_text("utf-8")) for e in folder.iterdir() if e.name.endswith(".sql")]
    return sorted(found)


def _webhook_record(row: Any) -> WebhookRecord:
    return WebhookRecord(row[0], row[1], row[2], row[3], row[4], WebhookStatus(row[5]), row[6], row[7], row[8], row[9])


class PostgresStore:
    """The :class:`~webhook_manager.store.port.Store` on PostgreSQL."""

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        self._pool = pool
        self._url = url
        self._watcher: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, url: str) -> PostgresStore:
        """Connect a small pool; StoreUnavailable when the server cannot be reached."""
        try:
            pool = await asyncpg.create_pool(url, min_size=1, max_size=8, command_timeout=60)
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"store unavailable: {exc}") from exc
        return cls(pool, url)

    async def watch(self, wake: Callable[[str], None]) -> None:
        """LISTEN for other processes' ``events`` and ``webhooks`` notices, reconnecting after an outage.
        Only a wake-up: the loops poll the rows anyway, so a notice lost in an outage costs a poll's delay."""

        async def listen() -> None:
            while True:
                try:
                    conn = await asyncpg.connect(self._url, timeout=10)
                except (*_UNAVAILABLE, asyncpg.PostgresError):
                    await asyncio.sleep(WATCH_RETRY_S)
                    continue
                try:
                    await conn.add_listener(CHANNEL, lambda _c, _pid, _channel, payload: wake(payload))
                    while not conn.is_closed():
                        await asyncio.sleep(WATCH_RETRY_S)
                except (*_UNAVAILABLE, asyncpg.PostgresError):
                    pass
                finally:
                    if not conn.is_closed():
                        conn.terminate()
                wake("events")  # whatever was announced while deaf
                wake("webhooks")

        self._watcher = asyncio.create_task(listen(), name="postgres-listen")

    @asynccontextmanager
    async def _connection(self, *, transaction: bool = True) -> AsyncIterator[Connection]:
        try:
            async with self._pool.acquire() as conn:
                if not transaction:
                    yield conn
                    return
                async with conn.transaction():
                    yield conn
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"store unavailable: {exc}") from exc

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self._pool.close()

    async def migrate(self) -> list[int]:
        async with self._connection() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('webhook_manager.migrate'))")
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            applied = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            done = []
            for version, script in migrations():
                if version not in applied:
                    await conn.execute(script)
                    await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
                    done.append(version)
            return done

    async def ping(self) -> None:
        async with self._connection(transaction=False) as conn:
            await conn.fetchval("SELECT count(*) FROM schema_migrations")

    # accounts

    async def create_user(
        self, client_code: str, username: str, password_hash: str, now_ms: int, *, only_if_first: bool = False
    ) -> User | None:
        async with self._connection() as conn:
            if only_if_first:
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext('webhook_manager.first_user'))")
                if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM users)"):
                    return None
            await conn.execute(
                "INSERT INTO clients (code, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING", client_code, now_ms
            )
            try:
                user_id = await conn.fetchval(
                    "INSERT INTO users (client_code, username, password_hash, created_at) VALUES ($1, $2, $3, $4)"
                    " RETURNING id",
                    client_code,
                    username,
                    password_hash,
                    now_ms,
                )
            except asyncpg.UniqueViolationError:
                raise Conflict(f"user {username!r} of client {client_code!r} exists already") from None
            return User(user_id, client_code, username, password_hash)

    async def has_users(self) -> bool:
        async with self._connection(transaction=False) as conn:
            return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM users)"))

    async def find_user(self, client_code: str, username: str) -> User | None:
        async with self._connection(transaction=False) as conn:
            row = await conn.fetchrow(
                "SELECT id, client_code, username, password_hash FROM users WHERE client_code = $1 AND username = $2",
                client_code,
                username,
            )
        return None if row is None else User.from_row(row)

    async def login_failures(self, client_code: str, username: str) -> LoginFailures | None:
        async with self._connection(transaction=False) as conn:
            row = await conn.fetchrow(
                "SELECT count, last_failure_at FROM login_failures WHERE client_code = $1 AND username = $2",
                client_code,
                username,
            )
        return None if row is None else LoginFailures(row[0], row[1])

    async def record_login_failure(
        self, client_code: str, username: str, now_ms: int, restart_before_ms: int
    ) -> LoginFailures:
        async with self._connection() as conn:
            await conn.execute(
                "DELETE FROM login_failures WHERE ctid = ANY (ARRAY(SELECT ctid FROM login_failures"
                " WHERE last_failure_at < $1 LIMIT 100))",
                restart_before_ms,
            )
            row = await conn.fetchrow(
                "INSERT INTO login_failures AS f (client_code, username, count, last_failure_at)"
                " VALUES ($1, $2, 1, $3) ON CONFLICT (client_code, username) DO UPDATE SET"
                " count = CASE WHEN f.last_failure_at < $4 THEN 1 ELSE f.count + 1 END,"
                " last_failure_at = excluded.last_failure_at RETURNING count, last_failure_at",
                client_code,
                username,
                now_ms,
                restart_before_ms,
            )
        assert row is not None
        return LoginFailures(row[0], row[1])

    async def clear_login_failures(self, client_code: str, username: str) -> None:
        async with self._connection() as conn:
            await conn.execute(
                "DELETE FROM login_failures WHERE client_code = $1 AND username = $2", client_code, username
            )

    # sessions

    async def create_session(self, session: Session, *, purge_expired_before_ms: int) -> None:
        async with self._connection() as conn:
            await conn.execute("DELETE FROM sessions WHERE expires_at < $1", purge_expired_before_ms)
            await conn.execute(
                "INSERT INTO sessions (key_hash, user_id, client_code, created_at, expires_at)"
                " VALUES ($1, $2, $3, $4, $5)",
                session.key_hash,
                session.user_id,
                session.client_code,
                session.created_at_ms,
                session.expires_at_ms,
            )

    async def find_session(self, key_hash: bytes) -> Session | None:
        async with self._connection(transaction=False) as conn:
            row = await conn.fetchrow(
                "SELECT key_hash, user_id, client_code, created_at, expires_at FROM sessions WHERE key_hash = $1",
                key_hash,
            )
        return None if row is None else Session.from_row(row)

    # configurations

    async def list_configurations(self, client_code: str) -> list[Configuration]:
        async with self._connection(transaction=False) as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM configurations WHERE client_code = $1 ORDER BY seq", client_code
            )
        return [Configuration.from_row(r) for r in rows]

    async def get_configuration(self, client_code: str, configuration_id: str) -> Configuration | None:
        async with self._connection(transaction=False) as conn:
            row = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM configurations WHERE id = $1 AND client_code = $2",
                configuration_id,
                client_code,
            )
        return None if row is None else Configuration.from_row(row)

    async def create_configuration(self, configuration: Configuration) -> None:
        c = configuration
        async with self._connection() as conn:
            await conn.execute(
                "INSERT INTO clients (code, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                c.client_code,
                c.created_at_ms,
            )
            await conn.execute(
                f"INSERT INTO configurations ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                c.id,
                c.client_code,
                c.table,
                c.action.value,
                c.endpoint,
                c.secret,
                c.disabled,
                c.created_at_ms,
                c.updated_at_ms,
            )

    async def replace_configuration(
        self, client_code: str, configuration_id: str, new: ConfigurationInput, now_ms: int
    ) -> Configuration | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(
                "UPDATE configurations SET table_name = $1, action = $2, endpoint = $3, secret = $4, disabled = $5,"
                f" updated_at = $6 WHERE id = $7 AND client_code = $8 RETURNING {_COLUMNS}",
                new.table,
                new.action.value,
                new.endpoint,
                new.secret,
                new.disabled,
                now_ms,
                configuration_id,
                client_code,
            )
            if row is not None and new.disabled:
                await _fail_unsent(conn, configuration_id, "configuration disabled", now_ms)
        return None if row is None else Configuration.from_row(row)

    async def remove_configuration(self, client_code: str, configuration_id: str, now_ms: int) -> bool:
        async with self._connection() as conn:
            removed = await conn.fetchval(
                "DELETE FROM configurations WHERE id = $1 AND client_code = $2 RETURNING true",
                configuration_id,
                client_code,
            )
            if removed:
                await _fail_unsent(conn, configuration_id, "configuration removed", now_ms)
        return bool(removed)

    # the pipeline

    async def record_events(
        self, client_code: str, table: str, action: str, items: bytes, count: int, now_ms: int
    ) -> bool:
        async with self._connection(transaction=False) as conn:
            seq = await conn.fetchval(
                "WITH kept AS (INSERT INTO event_bundles (client_code, table_name, action, event_count, items,"
                " created_at) SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM configurations"
                " WHERE client_code = $1 AND table_name = $2 AND action = $3 AND NOT disabled) RETURNING seq)"
                f" SELECT seq FROM kept, pg_notify('{CHANNEL}', 'events')",
                client_code,
                table,
                action,
                count,
                items,
                now_ms,
            )
        return seq is not None

    async def capture_position(self, source: str) -> str | None:
        async with self._connection(transaction=False) as conn:
            position: str | None = await conn.fetchval(
                "SELECT position FROM capture_positions WHERE source = $1", source
            )
        return position

    async def forget_capture(self, source: str) -> bool:
        async with self._connection(transaction=False) as conn:
            done = await conn.fetchval("DELETE FROM capture_positions WHERE source = $1 RETURNING true", source)
        return bool(done)

    async def record_captured(
        self,
        client_code: str,
        source: str,
        expected: str | None,
        position: str,
        groups: Sequence[CapturedGroup],
        now_ms: int,
    ) -> int:
        async with self._connection() as conn:
            if expected is None:
                moved = await conn.fetchval(
                    "INSERT INTO capture_positions (source, client_code, position, updated_at)"
                    " VALUES ($1, $2, $3, $4) ON CONFLICT (source) DO NOTHING RETURNING true",
                    source,
                    client_code,
                    position,
                    now_ms,
                )
            else:
                moved = await conn.fetchval(
                    "UPDATE capture_positions SET position = $2, updated_at = $3"
                    " WHERE source = $1 AND position = $4 RETURNING true",
                    source,
                    position,
                    now_ms,
                    expected,
                )
            if not moved:
                raise CaptureConflict(f"capture source {source!r} was recorded by another process")
            if not groups:
                return 0
            kept: int = await conn.fetchval(
                "WITH kept AS (INSERT INTO event_bundles (client_code, table_name, action, event_count, items,"
                " created_at) SELECT $1, g.t, g.a, g.c, g.i, $6"
                " FROM unnest($2::text[], $3::text[], $4::integer[], $5::bytea[]) WITH ORDINALITY AS g (t, a, c, i, o)"
                " WHERE EXISTS (SELECT 1 FROM configurations WHERE client_code = $1 AND table_name = g.t"
                " AND action = g.a AND NOT disabled) ORDER BY g.o RETURNING event_count)"
                " SELECT coalesce(sum(event_count), 0) FROM kept",
                client_code,
                [g.table for g in groups],
                [g.action for g in groups],
                [g.count for g in groups],
                [g.items for g in groups],
                now_ms,
            )
            if kept:
                await conn.execute(f"SELECT pg_notify('{CHANNEL}', 'events')")
        return kept

    async def form_webhooks(self, form: FormWebhooks, now_ms: int) -> tuple[int, int | None]:
        made, wake_at = 0, None
        async with self._connection(transaction=False) as conn:
            subjects = await conn.fetch(
                "SELECT DISTINCT client_code, table_name, action FROM event_bundles WHERE processed_count < event_count"
            )
            for client_code, table, action in subjects:
                async with conn.transaction():
                    # One process forms a subject at a time, so its batches stay whole and in order.
                    if not await conn.fetchval(
                        "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))",
                        f"{client_code}\x1f{table}\x1f{action}",
                    ):
                        continue
                    rows = await conn.fetch(
                        "SELECT seq, created_at, processed_count, event_count, items FROM event_bundles"
                        " WHERE client_code = $1 AND table_name = $2 AND action = $3"
                        " AND processed_count < event_count ORDER BY seq LIMIT $4",
                        client_code,
                        table,
                        action,
                        PENDING_BUNDLES_PER_SUBJECT + 1,
                    )
                    bundles = [PendingBundle(*r) for r in rows[:PENDING_BUNDLES_PER_SUBJECT]]
                    configurations = [
                        Configuration.from_row(r)
                        for r in await conn.fetch(
                            f"SELECT {_COLUMNS} FROM configurations WHERE client_code = $1 AND table_name = $2"
                            " AND action = $3 AND NOT disabled ORDER BY seq",
                            client_code,
                            table,
                            action,
                        )
                    ]
                    formed = form((client_code, table, action), bundles, configurations, len(rows) == len(bundles))
                    webhooks = formed.webhooks
                    await conn.execute(
                        "INSERT INTO webhooks (id, client_code, configuration_id, table_name, action, endpoint,"
                        " secret, event_count, payload, status, created_at, due_at)"
                        " SELECT t.id, $1, t.cid, $2, $3, t.endpoint, t.secret, t.n, t.body, 'pending', $4, $4"
                        " FROM unnest($5::text[], $6::text[], $7::text[], $8::text[], $9::int[], $10::bytea[])"
                        " AS t(id, cid, endpoint, secret, n, body)",
                        client_code,
                        table,
                        action,
                        now_ms,
                        [w.id for w in webhooks],
                        [w.configuration_id for w in webhooks],
                        [w.endpoint for w in webhooks],
                        [w.secret for w in webhooks],
                        [w.event_count for w in webhooks],
                        [w.payload for w in webhooks],
                    )
                    await conn.execute(
                        "UPDATE event_bundles b SET processed_count = t.n, processed_at = $1"
                        " FROM unnest($2::bigint[], $3::int[]) AS t(seq, n) WHERE b.seq = t.seq",
                        now_ms,
                        [seq for seq, _ in formed.advances],
                        [n for _, n in formed.advances],
                    )
                made += len(formed.webhooks)
                if formed.wake_at_ms is not None and (wake_at is None or formed.wake_at_ms < wake_at):
                    wake_at = formed.wake_at_ms
        # No NOTIFY here: the process that formed them sends them (other workers poll every 100 ms), and each
        # NOTIFY takes PostgreSQL's global notify lock through its commit.
        return made, wake_at

    async def claim_due_webhooks(
        self, now_ms: int, limit: int, lease_ms: int, in_flight: Mapping[str, int], per_endpoint: int
    ) -> list[DueWebhook]:
        lease_end = now_ms + lease_ms
        rows: list[Any] = []
        async with self._connection() as conn:
            endpoints = [
                r[0]
                for r in await conn.fetch(
                    "WITH RECURSIVE e(endpoint) AS ("
                    " SELECT min(endpoint) FROM webhooks WHERE due_at IS NOT NULL"
                    " UNION ALL SELECT (SELECT min(endpoint) FROM webhooks"
                    " WHERE due_at IS NOT NULL AND endpoint > e.endpoint) FROM e WHERE e.endpoint IS NOT NULL"
                    ") SELECT endpoint FROM e WHERE endpoint IS NOT NULL"
                )
            ]
            random.shuffle(endpoints)
            for endpoint in endpoints:
                room = min(per_endpoint - in_flight.get(endpoint, 0), limit - len(rows))
                if room <= 0:
                    if len(rows) >= limit:
                        break
                    continue
                rows += await conn.fetch(
                    "WITH picked AS (SELECT seq FROM webhooks WHERE endpoint = $1 AND due_at IS NOT NULL"
                    " AND due_at <= $2 ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED)"
                    " UPDATE webhooks w SET due_at = $4, lease_until = $4 FROM picked WHERE w.seq = picked.seq"
                    " RETURNING w.seq, w.id, w.endpoint, w.payload, w.round_tries, w.configuration_id, w.secret",
                    endpoint,
                    now_ms,
                    room,
                    lease_end,
                )
            disabled_by_id = {
                r[0]: r[1]
                for r in await conn.fetch(
                    "SELECT id, disabled FROM configurations WHERE id = ANY($1::text[])", list({r[5] for r in rows})
                )
            }
            claimed, ended = [], []
            for seq, webhook_id, endpoint, payload, round_tries, configuration_id, secret in rows:
                disabled = disabled_by_id.get(configuration_id)
                if disabled is None:
                    ended.append((now_ms, "configuration removed", seq))
                elif disabled:
                    ended.append((now_ms, "configuration disabled", seq))
                else:
                    claimed.append(DueWebhook(seq, webhook_id, endpoint, bytes(payload), secret, round_tries))
            await conn.executemany(
                "UPDATE webhooks SET status = 'failed', due_at = NULL, lease_until = NULL, processed_at = $1,"
                " last_failure = $2 WHERE seq = $3",
                ended,
            )
        return claimed

    async def record_attempts(self, outcomes: Sequence[AttemptOutcome]) -> None:
        columns = (
            [o.webhook_seq for o in outcomes],
            [o.at_ms for o in outcomes],
            [o.duration_ms for o in outcomes],
            [o.http_status for o in outcomes],
            [o.error for o in outcomes],
            [_status(o) for o in outcomes],
            [o.next_due_ms for o in outcomes],
        )
        async with self._connection() as conn:
            await conn.execute(
                "INSERT INTO attempts (webhook_seq, try, at, duration_ms, http_status, error)"
                " SELECT w.seq, w.tries + 1, t.at, t.duration, t.status, t.error"
                " FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::int[], $5::text[])"
                " AS t(seq, at, duration, status, error) JOIN webhooks w ON w.seq = t.seq",
                *columns[:5],
            )
            await conn.execute(
                "UPDATE webhooks w SET tries = w.tries + 1, round_tries = w.round_tries + 1, status = t.state,"
                " last_failure = CASE WHEN t.error = '' THEN w.last_failure ELSE t.error END,"
                " processed_at = t.at + t.duration, due_at = t.due, lease_until = NULL"
                " FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::int[], $5::text[], $6::text[], $7::bigint[])"
                " AS t(seq, at, duration, status, error, state, due) WHERE w.seq = t.seq",
                *columns,
            )

    async def release_leases(self, now_ms: int) -> int:
        async with self._connection() as conn:
            done = await conn.execute(
                "UPDATE webhooks SET due_at = $1, lease_until = NULL WHERE lease_until IS NOT NULL"
                " AND due_at IS NOT NULL",
                now_ms,
            )
        return int(done.split()[-1])

    async def list_webhooks(
        self, client_code: str, table: str | None, action: str | None, limit: int
    ) -> list[WebhookRecord]:
        async with self._connection(transaction=False) as conn:
            rows = await conn.fetch(
                f"SELECT {_WEBHOOK} FROM webhooks WHERE client_code = $1 AND ($2::text IS NULL OR table_name = $2)"
                " AND ($3::text IS NULL OR action = $3) ORDER BY seq DESC LIMIT $4",
                client_code,
                table,
                action,
                limit,
            )
        return [_webhook_record(r) for r in rows]

    async def get_webhook(self, client_code: str, webhook_id: str) -> tuple[WebhookRecord, bytes, list[Attempt]] | None:
        async with self._connection(transaction=False) as conn:
            row = await conn.fetchrow(
                f"SELECT {_WEBHOOK}, payload, seq FROM webhooks WHERE id = $1 AND client_code = $2",
                webhook_id,
                client_code,
            )
            if row is None:
                return None
            attempts = await conn.fetch(
                "SELECT at, duration_ms, http_status, error FROM attempts WHERE webhook_seq = $1 ORDER BY try", row[11]
            )
        return _webhook_record(row), bytes(row[10]), [Attempt(*a) for a in attempts]

    async def resend_webhook(self, client_code: str, webhook_id: str, now_ms: int) -> str | None:
        async with self._connection() as conn:
            status = await conn.fetchval(
                "SELECT status FROM webhooks WHERE id = $1 AND client_code = $2 FOR UPDATE", webhook_id, client_code
            )
            if status == WebhookStatus.FAILED.value:
                await conn.execute(
                    "UPDATE webhooks SET status = 'pending', round_tries = 0, due_at = $1, lease_until = NULL"
                    " WHERE id = $2",
                    now_ms,
                    webhook_id,
                )
                await conn.execute(f"SELECT pg_notify('{CHANNEL}', 'webhooks')")
        return None if status is None else str(status)

    async def list_events(self, client_code: str, table: str, action: str, limit: int) -> list[EventRecord]:
        events: list[EventRecord] = []
        async with self._connection() as conn:
            cursor = conn.cursor(
                "SELECT seq, event_count, items, created_at, processed_count, processed_at FROM event_bundles"
                " WHERE client_code = $1 AND table_name = $2 AND action = $3 ORDER BY seq DESC",
                client_code,
                table,
                action,
            )
            async for seq, count, items, created_at, processed_count, processed_at in cursor:
                decoded = orjson.loads(items)
                for index in range(count - 1, -1, -1):
                    processed = index < processed_count
                    events.append(
                        EventRecord(
                            f"{seq:016x}{index:08x}",
                            table,
                            action,
                            decoded[index]["rowId"],
                            EventStatus.PROCESSED if processed else EventStatus.PENDING,
                            decoded[index]["timestamp"],
                            created_at,
                            processed_at if processed else None,
                        )
                    )
                    if len(events) >= limit:
                        return events
        return events

    async def purge_finished(self, before_ms: int, limit: int) -> int:
        async with self._connection() as conn:
            webhooks = await conn.execute(
                "DELETE FROM webhooks WHERE seq = ANY (ARRAY(SELECT seq FROM webhooks"
                " WHERE due_at IS NULL AND processed_at < $1 LIMIT $2))",
                before_ms,
                limit,
            )
            bundles = await conn.execute(
                "DELETE FROM event_bundles WHERE seq = ANY (ARRAY(SELECT seq FROM event_bundles"
                " WHERE processed_count >= event_count AND processed_at < $1 ORDER BY seq LIMIT $2))",
                before_ms,
                limit,
            )
        return int(webhooks.split()[-1]) + int(bundles.split()[-1])


def _status(outcome: AttemptOutcome) -> str:
    if outcome.sent:
        return WebhookStatus.SENT.value
    return WebhookStatus.RETRYING.value if outcome.next_due_ms is not None else WebhookStatus.FAILED.value


async def _fail_unsent(conn: Connection, configuration_id: str, reason: str, now_ms: int) -> None:
    await conn.execute(
        "UPDATE webhooks SET status = 'failed', due_at = NULL, lease_until = NULL, processed_at = $1,"
        " last_failure = $2 WHERE configuration_id = $3 AND due_at IS NOT NULL"
        " AND (lease_until IS NULL OR lease_until <= $1)",
        now_ms,
        reason,
        configuration_id,
    )
