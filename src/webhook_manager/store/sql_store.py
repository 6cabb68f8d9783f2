"""The store's logic, written once: every verb of the port (:class:`~webhook_manager.store.port.Store`) as
steps over a dialect's named queries (:mod:`.dialect`). Nothing here is SQL, and nothing here knows which
store it runs on; the adapters (:mod:`.sqlite`, :mod:`.postgres`) hold the SQL and the connection handling.

Verbs are laid out by aggregate, in the order of the query files: schema, accounts, configurations, events,
webhooks.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple

import orjson

from webhook_manager.domain.errors import CaptureConflict, Conflict, LimitReached, NotFound, StoreUnavailable
from webhook_manager.domain.model import (
    Attempt,
    AttemptOutcome,
    CapturedGroup,
    CapturedTable,
    Configuration,
    ConfigurationCaps,
    ConfigurationInput,
    DueWebhook,
    EventRecord,
    EventStatus,
    Formed,
    FormWebhooks,
    KeyedRecording,
    NewWebhook,
    PendingBundle,
    Session,
    Subject,
    User,
    WebhookRecord,
    WebhookStatus,
    WebhookTypes,
)
from webhook_manager.store.dialect import Connector, Db, DuplicateKey, Row, WriteFailures, migrations
from webhook_manager.store.reports import Reports

PROBE_EVERY_S = 1.0
"""``ping`` writes at most once a second; the calls in between get that write's outcome."""
PENDING_BUNDLES_PER_SUBJECT = 200
"""A forming transaction reads at most this many bundles of one subject (a bundle holds up to 10 000 events)."""
MAX_BATCH_EVENTS = 100
"""The most events a webhook holds (Erply's limit; batch_max_events is at most this)."""
FORM_BYTES = 1024 * 1024
"""… and bundles of at most this many bytes of items (always a whole batch's worth at least), and a run of
form_webhooks stops once it has read this many, so that forming needs little room on a nearly full disk; what
is left goes in the next run."""
NO_SEQ = 2**63 - 1
"""The largest integer of both stores, beyond any webhook's seq: ``list_webhooks`` without ``before`` lists the
webhooks below it, so its one query always starts its walk of the client's index at a bound."""
RESEND_CHUNK = 1000
"""``resend_webhooks`` changes at most this many webhooks a statement (and a transaction)."""
EVENT_NAMES_PER_CLIENT = 1000
"""The most (table, action) names of ``POST /v1/event`` kept per client for the webhook-type catalogue."""
NOTED_NAMES_KEPT = 100_000
"""How many noted names a store object remembers, so that noting one costs nothing the next time; past this it
forgets them all (noting again is one small write that changes nothing)."""


class SqlStore(Reports):
    """The :class:`~webhook_manager.store.port.Store` over one :class:`~webhook_manager.store.dialect.Connector`
    (the read-only reports are in :class:`~webhook_manager.store.reports.Reports`)."""

    def __init__(self, connector: Connector) -> None:
        self._c = connector
        self._migrations = migrations(connector.dialect)
        self._probe: asyncio.Future[None] | None = None
        self._probe_at = -math.inf
        # Bytes of events not yet formed into webhooks, as of the last forming round and what came in since
        # (only where the store keeps a disk reserve: see Connector.intake_problem).
        self._pending_bytes = 0
        self._noted_names: set[tuple[str, str, str]] = set()

    @property
    def single_process(self) -> bool:
        return self._c.single_process

    async def close(self) -> None:
        await self._c.close()

    async def watch(self, wake: Callable[[str], None]) -> None:
        await self._c.watch(wake)

    # schema

    async def migrate(self) -> list[int]:
        async def apply(db: Db) -> list[int]:
            await db.execute("lock_migrations")
            await db.execute("create_migrations_table")
            applied = {row[0] for row in await db.fetch("applied_migrations")}
            done = []
            for version, script in self._migrations:
                if version not in applied:
                    await db.run_script(script)
                    await db.execute("note_migration", version)
                    done.append(version)
            return done

        return await self._c.write(apply)

    async def ping(self) -> None:
        now = time.monotonic()
        if self._probe is None or now - self._probe_at >= PROBE_EVERY_S:
            self._probe_at, self._probe = now, asyncio.ensure_future(self._probe_write())
        await asyncio.shield(self._probe)  # a caller that gives up does not cancel the others' probe

    async def service_secret(self, name: str, candidate: str) -> str:
        async def keep(db: Db) -> str:
            await db.execute("add_service_secret", name, candidate)
            return str(await db.fetch_value("service_secret", name))

        return await self._c.write(keep)

    def _check_intake(self) -> None:
        problem = self._c.intake_problem(self._pending_bytes)
        if problem is not None:
            raise StoreUnavailable(problem)

    async def _probe_write(self) -> None:
        async def probe(db: Db) -> None:
            await db.fetch_value("ping")
            await db.execute("probe_write")

        await self._c.write(probe)
        problem = self._c.intake_problem(self._pending_bytes)
        if problem is not None:
            raise StoreUnavailable(problem)
        problem = self._c.write_problem()
        if problem is not None:
            raise StoreUnavailable(f"writes failed in the last {WriteFailures.KEPT_S:.0f} s: {problem}")

    # accounts

    async def create_user(
        self, client_code: str, username: str, password_hash: str, now_ms: int, *, only_if_first: bool = False
    ) -> User | None:
        async def create(db: Db) -> User | None:
            if only_if_first:
                await db.execute("lock_first_user")
                if await db.fetch_one("any_user") is not None:
                    return None
            await db.execute("add_client", client_code, now_ms)
            try:
                user_id = await db.fetch_value("add_user", client_code, username, password_hash, now_ms)
            except DuplicateKey:
                raise Conflict(f"user {username!r} of client {client_code!r} exists already") from None
            return User(user_id, client_code, username, password_hash)

        return await self._c.write(create)

    async def has_users(self) -> bool:
        async def any_user(db: Db) -> bool:
            return await db.fetch_one("any_user") is not None

        return await self._c.read(any_user)

    async def find_user(self, client_code: str, username: str) -> User | None:
        async def find(db: Db) -> Row | None:
            return await db.fetch_one("find_user", client_code, username)

        row = await self._c.read(find)
        return None if row is None else User.from_row(row)

    async def get_user(self, user_id: int) -> User | None:
        async def find(db: Db) -> Row | None:
            return await db.fetch_one("get_user", user_id)

        row = await self._c.read(find)
        return None if row is None else User.from_row(row)

    async def login_failures(self, client_code: str, username: str, since_ms: int) -> int:
        async def count(db: Db) -> Row | None:
            return await db.fetch_one("login_failures", client_code, username, since_ms)

        row = await self._c.read(count)
        return 0 if row is None else int(row[0])

    async def record_login_failure(self, client_code: str, username: str, now_ms: int, forget_before_ms: int) -> None:
        async def add(db: Db) -> None:
            await db.execute("forget_old_login_failures", forget_before_ms)
            await db.execute("add_login_failure", client_code, username, now_ms)

        await self._c.write(add)

    async def clear_login_failures(self, client_code: str, username: str) -> None:
        async def clear(db: Db) -> None:
            await db.execute("clear_login_failures", client_code, username)

        await self._c.write(clear)

    async def create_session(self, session: Session, *, purge_expired_before_ms: int) -> None:
        s = session

        async def create(db: Db) -> None:
            await db.execute("purge_expired_sessions", purge_expired_before_ms)
            await db.execute("add_session", s.key_hash, s.user_id, s.client_code, s.created_at_ms, s.expires_at_ms)

        await self._c.write(create)

    async def find_session(self, key_hash: bytes) -> Session | None:
        async def find(db: Db) -> Row | None:
            return await db.fetch_one("find_session", key_hash)

        row = await self._c.read(find)
        return None if row is None else Session.from_row(row)

    # configurations

    async def list_configurations(self, client_code: str) -> list[Configuration]:
        async def rows(db: Db) -> list[Row]:
            return await db.fetch("list_configurations", client_code)

        return [Configuration.from_row(row) for row in await self._c.read(rows)]

    async def get_configuration(self, client_code: str, configuration_id: str) -> Configuration | None:
        async def find(db: Db) -> Row | None:
            return await db.fetch_one("get_configuration", configuration_id, client_code)

        row = await self._c.read(find)
        return None if row is None else Configuration.from_row(row)

    async def create_configuration(
        self, configuration: Configuration, *, caps: ConfigurationCaps | None = None
    ) -> None:
        c = configuration

        async def create(db: Db) -> None:
            await db.execute("add_client", c.client_code, c.created_at_ms)
            if caps is not None:
                await _check_caps(db, caps, c.client_code, c.table, c.action.value, new=True)
            await db.execute(
                "add_configuration",
                c.id,
                c.client_code,
                c.table,
                c.action.value,
                c.endpoint,
                c.secret,
                c.disabled,
                c.created_at_ms,
                c.updated_at_ms,
                orjson.dumps(dict(c.headers)).decode(),
            )

        await self._c.write(create)

    async def replace_configuration(
        self,
        client_code: str,
        configuration_id: str,
        new: ConfigurationInput,
        now_ms: int,
        *,
        caps: ConfigurationCaps | None = None,
        secret_grace_ms: int = 0,
    ) -> Configuration | None:
        async def replace(db: Db) -> Row | None:
            row = await db.fetch_one(
                "replace_configuration",
                new.table,
                new.action.value,
                new.endpoint,
                new.secret,
                new.disabled,
                now_ms,
                configuration_id,
                client_code,
                orjson.dumps(dict(new.headers)).decode(),
                secret_grace_ms,
            )
            if row is not None and caps is not None:  # raising rolls the change back
                await _check_caps(db, caps, client_code, new.table, new.action.value, new=False, id=configuration_id)
            if row is not None and new.disabled:
                await db.execute("fail_unsent_webhooks", now_ms, "configuration disabled", configuration_id)
            return row

        row = await self._c.write(replace)
        return None if row is None else Configuration.from_row(row)

    async def remove_configuration(self, client_code: str, configuration_id: str, now_ms: int) -> bool:
        async def remove(db: Db) -> bool:
            if not await db.execute("remove_configuration", configuration_id, client_code):
                return False
            await db.execute("fail_unsent_webhooks", now_ms, "configuration removed", configuration_id)
            return True

        return await self._c.write(remove)

    # events

    async def record_events(
        self, client_code: str, table: str, action: str, items: bytes, count: int, now_ms: int
    ) -> bool:
        self._check_intake()

        async def record(db: Db) -> bool:
            return await db.fetch_value("record_bundle", client_code, table, action, count, items, now_ms) is not None

        kept = await self._c.write_one(record)
        if kept:
            self._pending_bytes += len(items)
        return kept

    async def record_events_once(
        self,
        client_code: str,
        key: str,
        body_hash: bytes,
        table: str,
        action: str,
        items: bytes,
        count: int,
        now_ms: int,
        *,
        expired_before_ms: int,
    ) -> KeyedRecording:
        self._check_intake()

        async def record(db: Db) -> KeyedRecording:
            # The key first: a call that holds it keeps it locked to its commit, so one at the same time waits.
            args = (client_code, key, body_hash, count, now_ms, expired_before_ms)
            if await db.fetch_value("claim_idempotency_key", *args) is None:
                row = await db.fetch_one("idempotency_key", client_code, key)
                if row is None:  # the claim locked the row it found: nobody can have removed it since
                    raise RuntimeError(f"idempotency key {key!r} of client {client_code} vanished")
                first_hash, received, recorded = row
                same = bytes(first_hash) == body_hash
                return KeyedRecording(int(received), int(recorded), first=False, same_body=same)
            kept = await db.fetch_value("record_bundle", client_code, table, action, count, items, now_ms) is not None
            if kept:
                await db.execute("answer_idempotency_key", client_code, key, count)
            return KeyedRecording(count, count if kept else 0, first=True, same_body=True)

        # A transaction of its own (not write_one's single statement): the key and the events commit together.
        done = await self._c.write(record)
        if done.first and done.recorded:
            self._pending_bytes += len(items)
        return done

    async def note_event_name(self, client_code: str, table: str, action: str, now_ms: int) -> None:
        name = (client_code, table, action)
        if name in self._noted_names:
            return

        async def note(db: Db) -> None:
            await db.execute("note_event_name", client_code, table, action, now_ms, EVENT_NAMES_PER_CLIENT)

        await self._c.write_one(note)
        if len(self._noted_names) >= NOTED_NAMES_KEPT:
            self._noted_names.clear()
        self._noted_names.add(name)

    async def list_events(self, client_code: str, table: str, action: str, limit: int) -> list[EventRecord]:
        async def bundles(db: Db) -> list[Row]:
            # every bundle holds at least one event, so ``limit`` bundles hold enough
            return await db.fetch("recent_bundles", client_code, table, action, limit)

        return events_of_bundles(await self._c.read(bundles), table, action, limit)

    async def webhook_types(self, client_code: str) -> WebhookTypes:
        async def catalogue(db: Db) -> tuple[list[Row], list[Row]]:
            return await db.fetch("captured_tables", client_code), await db.fetch("event_names", client_code)

        tables, names = await self._c.read(catalogue)
        # sorted here, not in SQL: PostgreSQL's collation may order names otherwise than SQLite
        return WebhookTypes(
            captured=sorted((CapturedTable(t, bool(r), bool(e)) for t, r, e in tables), key=lambda c: c.table),
            custom=sorted((str(t), str(a)) for t, a in names),
        )

    async def capture_position(self, source: str) -> str | None:
        async def find(db: Db) -> str | None:
            position = await db.fetch_value("capture_position", source)
            return None if position is None else str(position)

        return await self._c.read(find)

    async def forget_capture(self, source: str) -> bool:
        async def forget(db: Db) -> bool:
            tables = await db.execute("forget_capture_tables", source)
            return await db.execute("forget_capture_position", source) + tables > 0

        return await self._c.write(forget)

    async def describe_capture(
        self, source: str, client_code: str, tables: Sequence[CapturedTable], now_ms: int
    ) -> None:
        async def describe(db: Db) -> None:
            await db.execute("forget_capture_tables", source)
            for t in tables:
                await db.execute("add_capture_table", source, t.table, client_code, t.row_id, t.enriched, now_ms)

        await self._c.write(describe)

    async def record_captured(
        self,
        client_code: str,
        source: str,
        expected: str | None,
        position: str,
        groups: Sequence[CapturedGroup],
        now_ms: int,
        *,
        committed_ms: int | None = None,
    ) -> int:
        self._check_intake()

        async def record(db: Db) -> int:
            if expected is None:
                moved = await db.execute("start_capture_position", source, client_code, position, now_ms, committed_ms)
            else:
                moved = await db.execute("move_capture_position", source, position, now_ms, expected, committed_ms)
            if not moved:
                raise CaptureConflict(f"capture source {source!r} was recorded by another process")
            kept = 0
            for g in groups:
                seq = await db.fetch_value("record_bundle", client_code, g.table, g.action, g.count, g.items, now_ms)
                if seq is not None:
                    kept += g.count
            return kept

        kept = await self._c.write(record)
        self._pending_bytes += sum(len(g.items) for g in groups)
        return kept

    # webhooks

    async def form_webhooks(
        self, form: FormWebhooks, now_ms: int, *, stored: Callable[[Sequence[NewWebhook]], None] | None = None
    ) -> tuple[int, int | None]:
        told = _Told(stored, each_unit=self._c.units_commit)

        async def rounds(db: Db) -> tuple[int, int | None]:
            made, wake_at, read = 0, None, 0
            # Subjects in random order, so that none waits behind another when a run stops short.
            subjects = list(await db.fetch("pending_subjects"))
            random.shuffle(subjects)
            for client_code, table, action in subjects:
                if read >= FORM_BYTES:
                    # A run forms about FORM_BYTES of events (on SQLite it is one transaction): the rest goes
                    # in the next run, which is due now.
                    wake_at = now_ms
                    break
                done = await _form_round(db, form, (client_code, table, action), now_ms)
                if done is None:
                    continue  # another process forms this subject now
                formed, complete, size = done
                made += len(formed.webhooks)
                told.formed(formed.webhooks)
                if formed.advances:  # a round that holds its batch back reads it again later
                    read += size
                if not complete:
                    wake_at = now_ms  # more of this subject is pending
                elif formed.wake_at_ms is not None and (wake_at is None or formed.wake_at_ms < wake_at):
                    wake_at = formed.wake_at_ms
            if self._c.disk_reserve_bytes:
                self._pending_bytes = int(await db.fetch_value("pending_bytes"))
            return made, wake_at

        result = await self._c.steps(rounds)
        told.committed()
        return result

    async def claim_due_webhooks(
        self,
        now_ms: int,
        limit: int,
        lease_ms: int,
        in_flight: Mapping[str, int],
        per_endpoint: int,
        *,
        take_over: bool = True,
    ) -> list[DueWebhook]:
        async def claim(db: Db) -> list[DueWebhook]:
            # Endpoints in random order, so none waits behind another when ``limit`` is short.
            endpoints = [row[0] for row in await db.fetch("endpoints_with_webhooks_due")]
            random.shuffle(endpoints)
            leased: list[Row] = []
            for endpoint in endpoints:
                room = min(per_endpoint - in_flight.get(endpoint, 0), limit - len(leased))
                if room > 0:
                    leased += await db.fetch("lease_due_webhooks", endpoint, now_ms, room, now_ms + lease_ms, take_over)
                elif len(leased) >= limit:
                    break
            if not leased:
                return []
            states = await db.fetch("configuration_states", sorted({row[5] for row in leased}))
            claimed, ended = split_claimed(leased, {row[0]: try_state(row, now_ms) for row in states}, now_ms)
            await db.execute_rows("end_webhooks", ended)
            return claimed

        # Not fsynced on SQLite: a lease lost with the machine only means the webhook is tried again.
        return await self._c.write(claim, durable=False)

    async def record_attempts(self, outcomes: Sequence[AttemptOutcome]) -> None:
        tries = [(o.webhook_seq, o.at_ms, o.duration_ms, o.http_status, o.error) for o in outcomes]
        ends = [(*t, o.status.value, o.next_due_ms) for t, o in zip(tries, outcomes, strict=True)]

        async def record(db: Db) -> None:
            # The try counted, then logged, each only when it is not logged yet: a write whose commit went
            # through but whose answer was lost (the store went away) is written again by the dispatcher.
            await db.execute_rows("end_tries", ends)
            await db.execute_rows("log_attempts", tries)

        await self._c.write(record)

    async def release_leases(self, now_ms: int) -> int:
        async def release(db: Db) -> int:
            return await db.execute("release_leases", now_ms)

        return await self._c.write(release)

    async def list_webhooks(
        self,
        client_code: str,
        table: str | None,
        action: str | None,
        limit: int,
        *,
        status: str | None = None,
        before: str | None = None,
    ) -> list[WebhookRecord]:
        async def rows(db: Db) -> list[Row] | None:
            below = NO_SEQ if before is None else await db.fetch_value("webhook_seq", before, client_code)
            if below is None:
                return None
            return await db.fetch("list_webhooks", client_code, table, action, limit, status, below)

        found = await self._c.read(rows)
        if found is None:
            raise NotFound(f"no webhook with id {before}")
        return [WebhookRecord.from_row(row) for row in found]

    async def get_webhook(self, client_code: str, webhook_id: str) -> tuple[WebhookRecord, bytes, list[Attempt]] | None:
        async def find(db: Db) -> tuple[Row, list[Row]] | None:
            row = await db.fetch_one("find_webhook", webhook_id, client_code)
            if row is None:
                return None
            return row, await db.fetch("attempts_of_webhook", row[11])

        found = await self._c.read(find)
        if found is None:
            return None
        row, attempts = found
        return WebhookRecord.from_row(row), bytes(row[10]), [Attempt(*a) for a in attempts]

    async def resend_webhook(self, client_code: str, webhook_id: str, now_ms: int) -> str | None:
        async def resend(db: Db) -> str | None:
            status = await db.fetch_value("webhook_status", webhook_id, client_code)
            if status == WebhookStatus.FAILED.value:
                await db.execute("resend_webhook", webhook_id, now_ms)
            return None if status is None else str(status)

        return await self._c.write(resend)

    async def resend_webhooks(
        self,
        client_code: str,
        *,
        table: str | None = None,
        action: str | None = None,
        configuration_id: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        now_ms: int,
        rate_per_s: int,
    ) -> int:
        if rate_per_s < 1:
            raise ValueError(f"rate_per_s must be at least 1, not {rate_per_s}")
        filters = (table, action, configuration_id, since_ms, until_ms)
        resent, after = 0, 0

        async def chunk(db: Db) -> list[Row]:
            return await db.fetch(
                "resend_webhooks", client_code, after, RESEND_CHUNK, *filters, now_ms, resent, rate_per_s
            )

        # A transaction per chunk, so a recovery of many webhooks holds no long one and lets other writes between.
        while rows := await self._c.write(chunk):
            resent += len(rows)
            after = max(int(row[0]) for row in rows)
            if len(rows) < RESEND_CHUNK:
                break
        return resent

    async def purge_finished(self, before_ms: int, limit: int, *, keys_before_ms: int | None = None) -> int:
        async def purge(db: Db) -> int:
            webhooks = await db.execute("purge_finished_webhooks", before_ms, limit)
            bundles = await db.execute("purge_processed_bundles", before_ms, limit)
            if keys_before_ms is None:
                return webhooks + bundles
            return webhooks + bundles + await db.execute("purge_idempotency_keys", keys_before_ms, limit)

        return await self._c.write(purge)


class _Told:
    """The webhooks of a forming run, told to ``stored`` once committed: each unit's at once where a unit
    commits by itself (PostgreSQL), else all of them when the run, one transaction, has (SQLite)."""

    def __init__(self, stored: Callable[[Sequence[NewWebhook]], None] | None, *, each_unit: bool) -> None:
        self._stored = stored
        self._each_unit = each_unit
        self._waiting: list[NewWebhook] = []

    def formed(self, webhooks: Sequence[NewWebhook]) -> None:
        if self._stored is None or not webhooks:
            return
        if self._each_unit:
            self._stored(webhooks)
        else:
            self._waiting.extend(webhooks)

    def committed(self) -> None:
        if self._stored is not None and self._waiting:
            self._stored(self._waiting)
        self._waiting = []


class TryState(NamedTuple):
    """What a try takes from its configuration at the claim: whether it is disabled, the secrets that sign it
    (the current one, and a replaced one while its grace lasts) and its custom headers."""

    disabled: bool
    secret: str
    extra_secrets: tuple[str, ...]
    headers: Mapping[str, str]


def try_state(row: Row, now_ms: int) -> TryState:
    """A ``configuration_states`` row (id, disabled, secret, previous_secret, previous_secret_until, headers) →
    its :class:`TryState` at ``now_ms``."""
    _, disabled, secret, previous, until, headers = row
    extra = (previous,) if previous and until is not None and now_ms < until else ()
    return TryState(bool(disabled), secret, extra, orjson.loads(headers))


def split_claimed(
    leased: Iterable[Row], states: Mapping[str, TryState], now_ms: int
) -> tuple[list[DueWebhook], list[tuple[int, int, str]]]:
    """Leased rows (seq, id, endpoint, payload, round_tries, configuration id, secret, client code, tries,
    recorded_at) → the webhooks to try, signed with their configuration's secrets and carrying its headers as
    ``states`` has them now (the webhook's own secret, that of its body's hmac, does not sign the try),
    and (seq, now, reason) of those to end failed because their configuration is gone (not in ``states``) or
    disabled."""
    claimed: list[DueWebhook] = []
    ended: list[tuple[int, int, str]] = []
    for (
        seq,
        webhook_id,
        endpoint,
        payload,
        round_tries,
        configuration_id,
        _body_secret,
        client_code,
        tries,
        recorded,
    ) in leased:
        state = states.get(configuration_id)
        if state is None:
            ended.append((seq, now_ms, "configuration removed"))
        elif state.disabled:
            ended.append((seq, now_ms, "configuration disabled"))
        else:
            claimed.append(
                DueWebhook(
                    seq,
                    webhook_id,
                    endpoint,
                    bytes(payload),
                    state.secret,
                    round_tries,
                    client_code,
                    configuration_id,
                    tries,
                    recorded,
                    state.extra_secrets,
                    state.headers,
                )
            )
    return claimed, ended


def events_of_bundles(bundles: Iterable[Row], table: str, action: str, limit: int) -> list[EventRecord]:
    """Bundles (seq, count, items, created_at, processed_count, processed_at), newest first → their events,
    newest first, at most ``limit``. An event's id is where it is stored: its bundle's seq and its index."""
    events: list[EventRecord] = []
    for seq, count, items, created_at, processed_count, processed_at in bundles:
        decoded = orjson.loads(items)
        for index in range(count - 1, -1, -1):
            processed = index < processed_count
            events.append(
                EventRecord(
                    id=f"{seq:016x}{index:08x}",
                    table=table,
                    action=action,
                    row_id=decoded[index]["rowId"],
                    status=EventStatus.PROCESSED if processed else EventStatus.PENDING,
                    timestamp=decoded[index]["timestamp"],
                    created_at_ms=created_at,
                    processed_at_ms=processed_at if processed else None,
                )
            )
            if len(events) >= limit:
                return events
    return events


async def _form_round(db: Db, form: FormWebhooks, subject: Subject, now_ms: int) -> tuple[Formed, bool, int] | None:
    """One transaction (on PostgreSQL; on SQLite a part of the run's) over the first pending bundles of
    ``subject``, up to FORM_BYTES of them: what was formed, whether it read all of them, and the bytes it
    read; None when another process forms the subject now."""
    client_code, table, action = subject
    async with db.transaction():
        if not await db.fetch_value("lock_subject", f"{client_code}\x1f{table}\x1f{action}"):
            return None
        sizes = await db.fetch("pending_bundle_sizes", client_code, table, action, PENDING_BUNDLES_PER_SUBJECT + 1)
        take, total, events = 0, 0, 0
        for _, size, unformed in sizes[:PENDING_BUNDLES_PER_SUBJECT]:
            if total + size > FORM_BYTES and events >= MAX_BATCH_EVENTS:
                break  # past the bytes, with a whole batch at least, so the round always forms one
            take, total, events = take + 1, total + size, events + unformed
        rows = await db.fetch("pending_bundles", client_code, table, action, take) if take else []
        configurations = [
            Configuration.from_row(row) for row in await db.fetch("enabled_configurations", client_code, table, action)
        ]
        complete = take == len(sizes)
        formed = form(subject, [PendingBundle(*row) for row in rows], configurations, complete)
        await db.execute_rows(
            "add_webhooks",
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
                    w.recorded_at_ms or None,
                )
                for w in formed.webhooks
            ],
        )
        await db.execute_rows("advance_bundles", [(seq, n, now_ms) for seq, n in formed.advances])
    return formed, complete, total


async def _check_caps(
    db: Db, caps: ConfigurationCaps, client_code: str, table: str, action: str, *, new: bool, id: str = ""
) -> None:
    """Raise LimitReached when the change would give the client more configurations than ``caps`` allow."""
    await db.fetch_one("lock_client", client_code)
    row = await db.fetch_one("count_configurations", client_code, table, action, id)
    others, same_subject = (int(row[0]), int(row[1])) if row is not None else (0, 0)
    if new and others >= caps.per_client:
        raise LimitReached(
            f"client {client_code} has {others} webhook configurations, the most allowed"
            " (setting max_configurations_per_client); remove one first"
        )
    if same_subject >= caps.per_subject:
        raise LimitReached(
            f"client {client_code} has {same_subject} webhook configurations for table {table!r} and action"
            f" {action!r}, the most allowed (setting max_configurations_per_subject)"
        )
