"""The store port: the domain verbs every adapter offers. Only ``store/`` knows SQL."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from webhook_manager.domain.model import (
    Attempt,
    AttemptOutcome,
    Backlog,
    CapturedGroup,
    CapturedTable,
    CapturePosition,
    Configuration,
    ConfigurationCaps,
    ConfigurationInput,
    DueWebhook,
    EndpointReport,
    EventRecord,
    FailedWebhook,
    FormWebhooks,
    KeyedRecording,
    MinuteCounts,
    NewWebhook,
    Session,
    User,
    WebhookRecord,
    WebhookTypes,
)


class Store(Protocol):
    """What the API and the pipeline need from storage; every call is atomic."""

    @property
    def single_process(self) -> bool:
        """True when one process at a time uses the store, so leases found at start belong to a process that
        died (the embedded SQLite store)."""
        ...

    async def migrate(self) -> list[int]:
        """Bring the schema up to date; return the versions applied now (none when current)."""
        ...

    async def ping(self) -> None:
        """Return when the store answers and takes a write (a one-row probe, at most once a second), and no
        write failed in the last few seconds; raise StoreUnavailable otherwise."""
        ...

    async def service_secret(self, name: str, candidate: str) -> str:
        """The service's secret of that name; ``candidate`` is stored first when there is none, so processes
        that start at once agree on one."""
        ...

    async def close(self) -> None:
        """Release connections and threads."""
        ...

    async def watch(self, wake: Callable[[str], None]) -> None:
        """Call ``wake("events")`` or ``wake("webhooks")`` when another process records events or makes
        webhooks due, where the store can tell (a wake-up only: the loops poll the rows too)."""
        ...

    # accounts

    async def create_user(
        self, client_code: str, username: str, password_hash: str, now_ms: int, *, only_if_first: bool = False
    ) -> User | None:
        """Create the client if new and a user of it; raise Conflict when the user exists.

        With ``only_if_first``, create nothing and return None when the store already holds any user.
        """
        ...

    async def has_users(self) -> bool:
        """True when the store holds at least one user."""
        ...

    async def find_user(self, client_code: str, username: str) -> User | None:
        """The user of that client with that name, or None."""
        ...

    async def get_user(self, user_id: int) -> User | None:
        """The user with that id (a session's), or None."""
        ...

    async def login_failures(self, client_code: str, username: str, since_ms: int) -> int:
        """How many failed logins that pair has had at or after ``since_ms`` since its last success."""
        ...

    async def record_login_failure(self, client_code: str, username: str, now_ms: int, forget_before_ms: int) -> None:
        """Note one failed login of that pair; failures of any pair older than ``forget_before_ms`` may be
        forgotten (a few at a time)."""
        ...

    async def clear_login_failures(self, client_code: str, username: str) -> None:
        """Forget the failures of that pair (after a successful login)."""
        ...

    # sessions

    async def create_session(self, session: Session, *, purge_expired_before_ms: int) -> None:
        """Store a new session, and drop sessions that expired before the given time."""
        ...

    async def find_session(self, key_hash: bytes) -> Session | None:
        """The session with that key hash, expired or not, or None."""
        ...

    # configurations

    async def list_configurations(self, client_code: str) -> list[Configuration]:
        """The client's configurations, oldest first."""
        ...

    async def get_configuration(self, client_code: str, configuration_id: str) -> Configuration | None:
        """One configuration of the client, or None (also when it belongs to another client)."""
        ...

    async def create_configuration(
        self, configuration: Configuration, *, caps: ConfigurationCaps | None = None
    ) -> None:
        """Store a new configuration (its client is created when new); raise LimitReached, storing nothing,
        when the client would have more configurations than ``caps`` allow (in all or for its table and
        action). Parallel calls of one client are counted one after the other."""
        ...

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
        """Replace every field of one of the client's configurations (its custom headers too); None when there is
        no such one. Raise LimitReached, changing nothing, when its new table and action would have more than
        ``caps.per_subject`` configurations.

        A new secret keeps the one it replaces (when not empty) as the previous secret, signing tries beside it
        until ``now_ms + secret_grace_ms`` (0: none kept); the same secret keeps a grace under way."""
        ...

    async def remove_configuration(self, client_code: str, configuration_id: str, now_ms: int) -> bool:
        """Remove one of the client's configurations and fail its unsent webhooks; False when there is none.

        Replacing a configuration with ``disabled`` true fails its unsent webhooks the same way.
        """
        ...

    # the pipeline

    async def record_events(
        self, client_code: str, table: str, action: str, items: bytes, count: int, now_ms: int
    ) -> bool:
        """Durably store ``count`` events (``items``: their JSON array in wire form) when an enabled
        configuration matches the subject; False, storing nothing, when none does."""
        ...

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
        """:meth:`record_events` under the client's idempotency ``key`` (``body_hash``: the SHA-256 of the
        request's body), in one transaction with the key: the first call with the key stores the events and keeps
        the key with its answer; any later one stores nothing and gets that answer, and whether its ``body_hash``
        is the first one's. A key kept from before ``expired_before_ms`` counts as unused. Calls with one key at
        once store the events once (on PostgreSQL a call waits for the commit of the one that took the key)."""
        ...

    async def note_event_name(self, client_code: str, table: str, action: str, now_ms: int) -> None:
        """Note that the client sends events of that table and action (``POST /v1/event``), for
        :meth:`webhook_types`; at most a thousand names per client are kept. Costs nothing once this store
        object has noted the name."""
        ...

    async def capture_position(self, source: str) -> str | None:
        """How far capture ``source`` has been recorded (its opaque position), None before its first events."""
        ...

    async def forget_capture(self, source: str) -> bool:
        """Drop capture ``source``'s position (it starts afresh) and the tables kept for it by
        :meth:`describe_capture`; False when there was neither."""
        ...

    async def describe_capture(
        self, source: str, client_code: str, tables: Sequence[CapturedTable], now_ms: int
    ) -> None:
        """Keep what capture ``source`` watches for the client, replacing what was kept for it before."""
        ...

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
        """In one transaction: store each group as :meth:`record_events` would (dropping unmatched ones) and
        move ``source`` from ``expected`` to ``position``, keeping ``committed_ms`` (when the batch's newest
        change was committed in the source) with it when given; return how many events were kept. Raises
        CaptureConflict, storing nothing, when the stored position is not ``expected``."""
        ...

    async def form_webhooks(
        self, form: FormWebhooks, now_ms: int, *, stored: Callable[[Sequence[NewWebhook]], None] | None = None
    ) -> tuple[int, int | None]:
        """Run ``form`` on every subject with pending events and store what it makes, advancing the events
        in the same transaction; return (webhooks made, earliest time a held-back batch is due). ``stored`` is
        called with the webhooks of each transaction once it has committed (for counting them; a run that
        fails half-way may have committed some)."""
        ...

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
        """Lease up to ``limit`` webhooks due by ``now_ms`` for ``lease_ms``, oldest due first per endpoint,
        none to an endpoint beyond ``per_endpoint`` minus its ``in_flight``; webhooks whose configuration
        is gone or disabled end failed instead. A webhook whose lease ran out (its try was never logged) is
        taken over only with ``take_over``. Each carries what its configuration has at ``now_ms``: its custom
        headers, its secret and a replaced secret still in its grace."""
        ...

    async def record_attempts(self, outcomes: Sequence[AttemptOutcome]) -> None:
        """Log tries and move their webhooks to sent, retrying or failed; releases their leases. Writing an
        outcome again (its first write committed but its answer was lost) changes nothing."""
        ...

    async def release_leases(self, now_ms: int) -> int:
        """Make every leased webhook due now (a single-process store at start: the holder died)."""
        ...

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
        """Up to ``limit`` of the client's webhooks, newest first; only those of ``table``, ``action`` and
        ``status`` when given, and only those older than the webhook ``before`` (an id), so the page after a list
        is ``before=`` its last id. Raise NotFound when ``before`` is not one of the client's webhooks."""
        ...

    async def get_webhook(self, client_code: str, webhook_id: str) -> tuple[WebhookRecord, bytes, list[Attempt]] | None:
        """One of the client's webhooks, its exact body and its tries (oldest first)."""
        ...

    async def resend_webhook(self, client_code: str, webhook_id: str, now_ms: int) -> str | None:
        """Give a failed webhook a new round of tries; return its status before, None when there is none."""
        ...

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
        """Give each of the client's failed webhooks (of ``table``, ``action`` and ``configuration_id``, created
        at or after ``since_ms`` and before ``until_ms``, when given) a new round of tries, as
        :meth:`resend_webhook` does, paced: oldest first, the k-th (from 0) is due at
        ``now_ms + k * 1000 // rate_per_s``, so webhooks formed meanwhile go between them. Written in chunks of
        :data:`~webhook_manager.store.sql_store.RESEND_CHUNK` (each its own transaction on PostgreSQL, through
        the client's index); return how many were resent."""
        ...

    async def list_events(self, client_code: str, table: str, action: str, limit: int) -> list[EventRecord]:
        """The client's recorded events of one table and action, newest first."""
        ...

    async def webhook_types(self, client_code: str) -> WebhookTypes:
        """The client's catalogue: the tables its capture sources watch (by table name; a table watched by
        several sources has a row id or is enriched only when all of them say so), and the names noted by
        :meth:`note_event_name`; each sorted."""
        ...

    async def purge_finished(self, before_ms: int, limit: int, *, keys_before_ms: int | None = None) -> int:
        """Delete a few finished webhooks and processed events older than ``before_ms``, and idempotency keys
        used before ``keys_before_ms`` when given (``limit`` of each at most); return rows gone."""
        ...

    # reports

    async def backlog(self, now_ms: int) -> Backlog:
        """What waits at ``now_ms``: events not yet in webhooks, webhooks pending, retrying, due and in flight,
        and the oldest of them (one read; it scans the unsent rows, so callers space their calls out)."""
        ...

    async def endpoint_report(self, since_ms: int, *, client_code: str | None = None) -> list[EndpointReport]:
        """How the tries that started at or after ``since_ms`` went, per endpoint (by name; only endpoints tried
        since): tries, successes, the median and 99th percentile of their durations (to two significant
        digits, rounded down; exact below 100 ms) and the last failure; only the tries of ``client_code``'s
        webhooks when given, else every client's. Tries have no index on their time (it would slow every try's
        insert), so this scans every try the store keeps (two reads of them, grouped in the store): for
        ``status`` and a dashboard's refresh, not for a tight loop."""
        ...

    async def webhooks_per_minute(self, client_code: str, since_ms: int, now_ms: int) -> list[MinuteCounts]:
        """How many of the client's webhooks ended ``sent`` and ``failed`` (by their ``processed_at``: their
        last try's end, or when their configuration went) in each minute from the one of ``since_ms`` to the
        one of ``now_ms``, oldest first, minutes without any included (through the index of finished
        webhooks)."""
        ...

    async def failed_webhooks(self, limit: int) -> list[FailedWebhook]:
        """The ``limit`` webhooks that ended failed most recently, newest first (through the index of finished
        webhooks, walking past the sent ones among them)."""
        ...

    async def capture_report(self) -> list[CapturePosition]:
        """Every capture source's position and when it last moved, by source."""
        ...

    async def unapplied_migrations(self) -> list[int]:
        """The schema versions this code has that the store has not applied (all of them on a store never
        migrated); reads only, so a read-only command can tell that the store needs ``migrate``."""
        ...
