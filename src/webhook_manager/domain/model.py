"""Domain values: frozen dataclasses and enums shared by the store, the pipeline and the API."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from webhook_manager.domain import exact_json


class Action(enum.StrEnum):
    """A database action a configuration listens for (``confirm`` is Erply's custom action)."""

    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"
    CONFIRM = "confirm"


class WebhookStatus(enum.StrEnum):
    """Where a webhook is in its life: pending → (retrying →)* sent | failed."""

    PENDING = "pending"
    RETRYING = "retrying"
    SENT = "sent"
    FAILED = "failed"


class EventStatus(enum.StrEnum):
    """An event is pending until it is put into a webhook."""

    PENDING = "pending"
    PROCESSED = "processed"


@dataclass(frozen=True, slots=True)
class ConfigurationInput:
    """What a client sends to create or replace a configuration (Erply's InputWebhookConfiguration)."""

    table: str
    action: Action
    endpoint: str
    secret: str
    disabled: bool = False
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Custom headers sent with every try (extension; never logged: they may carry tokens)."""


@dataclass(frozen=True, slots=True)
class Configuration:
    """A webhook configuration as stored: one client, one table and action, one endpoint."""

    id: str
    client_code: str
    table: str
    action: Action
    endpoint: str
    secret: str
    disabled: bool
    created_at_ms: int
    updated_at_ms: int
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Custom headers sent with every try of its webhooks (extension; never logged: they may carry tokens)."""
    previous_secret: str | None = field(default=None, repr=False)
    """The secret a replacement changed, still signing beside ``secret`` until ``previous_secret_until_ms``."""
    previous_secret_until_ms: int | None = None

    def secret_grace_until_ms(self, now_ms: int) -> int | None:
        """When the replaced secret stops signing beside the new one, while it still does at ``now_ms``."""
        until = self.previous_secret_until_ms
        return until if self.previous_secret and until is not None and now_ms < until else None

    @classmethod
    def from_row(cls, row: Any) -> Configuration:
        """Build from a store row in the order of the configurations columns (id first, updated_at, then
        optionally headers (JSON text), previous_secret and previous_secret_until)."""
        extension: dict[str, Any] = {}
        if len(row) > 9:
            extension = {
                "headers": orjson.loads(row[9]),
                "previous_secret": row[10],
                "previous_secret_until_ms": row[11],
            }
        return cls(
            id=row[0],
            client_code=row[1],
            table=row[2],
            action=Action(row[3]),
            endpoint=row[4],
            secret=row[5],
            disabled=bool(row[6]),
            created_at_ms=row[7],
            updated_at_ms=row[8],
            **extension,
        )


@dataclass(frozen=True, slots=True)
class ConfigurationCaps:
    """How many configurations a client may have, in all and per table and action (settings.py)."""

    per_client: int
    per_subject: int


@dataclass(frozen=True, slots=True)
class User:
    """A user of a client, who logs in with a password for session keys."""

    id: int
    client_code: str
    username: str
    password_hash: str

    @classmethod
    def from_row(cls, row: Any) -> User:
        """Build from a store row: (id, client_code, username, password_hash)."""
        return cls(id=row[0], client_code=row[1], username=row[2], password_hash=row[3])


@dataclass(frozen=True, slots=True)
class Session:
    """A session key's stored facts; the key itself is never stored, only its hash."""

    key_hash: bytes
    user_id: int
    client_code: str
    created_at_ms: int
    expires_at_ms: int

    @classmethod
    def from_row(cls, row: Any) -> Session:
        """Build from a store row: (key_hash, user_id, client_code, created_at, expires_at)."""
        return cls(
            key_hash=bytes(row[0]),
            user_id=row[1],
            client_code=row[2],
            created_at_ms=row[3],
            expires_at_ms=row[4],
        )


Subject = tuple[str, str, str]
"""(client code, table, action): what events and configurations are matched on."""


class PendingBundle:
    """Events of one recording call not yet all in webhooks. ``items`` (their wire form) are decoded from
    ``raw`` only when first used, so a round that stops early does not pay for the bundles it never reaches."""

    __slots__ = ("_items", "created_at_ms", "event_count", "processed_count", "raw", "seq")

    def __init__(self, seq: int, created_at_ms: int, processed_count: int, event_count: int, raw: bytes) -> None:
        self.seq = seq
        self.created_at_ms = created_at_ms
        self.processed_count = processed_count
        self.event_count = event_count
        self.raw = raw
        self._items: list[Any] | None = None

    @property
    def items(self) -> list[Any]:
        """The events in wire form, in recording order."""
        if self._items is None:
            self._items = exact_json.loads(self.raw)
        return self._items

    @items.setter
    def items(self, decoded: list[Any]) -> None:
        self._items = decoded

    @property
    def decoded(self) -> bool:
        """True once ``items`` has been decoded (or handed over)."""
        return self._items is not None


@dataclass(frozen=True, slots=True)
class NewWebhook:
    """A webhook formed by the batcher, body and all, ready to be stored."""

    id: str
    configuration_id: str
    client_code: str
    table: str
    action: str
    endpoint: str
    secret: str
    event_count: int
    payload: bytes
    recorded_at_ms: int
    """When its oldest event was recorded."""


@dataclass(frozen=True, slots=True)
class Formed:
    """What the batcher made of one subject's pending events.

    ``advances`` are (bundle seq, new processed_count); ``wake_at_ms`` is when a held-back partial batch
    becomes due, or None.
    """

    webhooks: list[NewWebhook]
    advances: list[tuple[int, int]]
    wake_at_ms: int | None


@dataclass(frozen=True, slots=True)
class DueWebhook:
    """A webhook claimed for one try."""

    seq: int
    id: str
    endpoint: str
    payload: bytes
    secret: str
    round_tries: int
    client_code: str = ""
    configuration_id: str = ""
    tries: int = 0
    """Tries before this one, in all rounds: 0 when this is its first send."""
    recorded_at_ms: int | None = None
    """When its oldest event was recorded (None for webhooks formed before that was kept)."""
    extra_secrets: tuple[str, ...] = field(default=(), repr=False)
    """Secrets that sign the try beside ``secret`` (its configuration's current one): the replaced secret while
    its grace lasts."""
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Its configuration's custom headers at the time of the claim (never logged: they may carry tokens)."""


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """How one try ended, and what follows: sent, another try at ``next_due_ms``, or failed for good."""

    webhook_seq: int
    at_ms: int
    duration_ms: int
    http_status: int | None
    error: str
    sent: bool
    next_due_ms: int | None

    @property
    def status(self) -> WebhookStatus:
        """The webhook's status after this try."""
        if self.sent:
            return WebhookStatus.SENT
        return WebhookStatus.RETRYING if self.next_due_ms is not None else WebhookStatus.FAILED


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    """A webhook as the delivery log shows it."""

    id: str
    table: str
    action: str
    endpoint: str
    event_count: int
    status: WebhookStatus
    tries: int
    last_failure: str
    created_at_ms: int
    processed_at_ms: int | None

    @classmethod
    def from_row(cls, row: Any) -> WebhookRecord:
        """Build from a store row: (id, table, action, endpoint, event_count, status, tries, last_failure,
        created_at, processed_at)."""
        return cls(row[0], row[1], row[2], row[3], row[4], WebhookStatus(row[5]), row[6], row[7], row[8], row[9])


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try of a webhook."""

    at_ms: int
    duration_ms: int
    http_status: int | None
    error: str


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One recorded event as ``GET /v1/event`` shows it."""

    id: str
    table: str
    action: str
    row_id: int
    status: EventStatus
    timestamp: str
    created_at_ms: int
    processed_at_ms: int | None


@dataclass(frozen=True, slots=True)
class CapturedGroup:
    """Captured events of one table and action, in the order they happened: their JSON array in wire form
    (``[{"rowId", "timestamp", "data"}, …]``) and how many there are."""

    table: str
    action: str
    items: bytes
    count: int


IDEMPOTENCY_KEY_KEPT_MS = 24 * 3_600_000
"""How long an ``Idempotency-Key`` of ``POST /v1/event`` is kept: a key used longer ago counts as unused."""


@dataclass(frozen=True, slots=True)
class KeyedRecording:
    """What recording events under an idempotency key did: the answer of the call that first used the key
    (``received`` events, ``recorded`` of them kept), whether this call was that one (``first``: its events are
    stored now; else nothing was stored), and whether it sent that call's body (``same_body``, true when
    ``first``)."""

    received: int
    recorded: int
    first: bool
    same_body: bool


FormWebhooks = Callable[[Subject, list[PendingBundle], list[Configuration], bool], Formed]
"""The batcher's pure step the store runs inside its transaction: (subject, pending bundles in order, enabled
configurations, whether every pending bundle was read) → the webhooks to store and how far each bundle got."""


@dataclass(frozen=True, slots=True)
class CapturedTable:
    """A table a capture source watches, as the webhook-type catalogue shows it (``GET /v1/webhook-type``)."""

    table: str
    row_id: bool
    """True when events carry the row-id column's value (the single integer primary key, or a configured
    column); False when the table has no such column and ``rowId`` is always 0."""
    enriched: bool
    """True with ``data = "row"`` (inserts and updates carry the row), False with ``data = "none"``."""


@dataclass(frozen=True, slots=True)
class WebhookTypes:
    """What fires for a client: the tables its capture sources watch (one entry per table, with the weakest
    promise of the sources that watch it), and the (table, action) names it has sent to ``POST /v1/event``."""

    captured: list[CapturedTable]
    custom: list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Backlog:
    """What waits in the store, for metrics and ``status``: events not yet in webhooks, and webhooks not yet
    ended."""

    pending_events: int
    oldest_pending_event_ms: int | None
    """When the oldest event not yet in a webhook was recorded."""
    webhooks_pending: int
    """Formed and not yet tried, or in their first try."""
    webhooks_retrying: int
    """Failed at least once, with another try to come."""
    webhooks_due: int
    """Due now and not being tried."""
    oldest_due_ms: int | None
    """Since when the webhook due longest has been due."""
    webhooks_in_flight: int
    """Being tried now, by any process (leased)."""


@dataclass(frozen=True, slots=True)
class EndpointReport:
    """How the tries to one endpoint went since a time, for ``status`` and ``GET /v1/endpoint-health``."""

    endpoint: str
    tries: int
    successes: int
    """Tries that sent their webhook (answered 200, or any 2xx with ``accept_any_2xx``)."""
    p50_ms: int
    """The median try's duration, to two significant digits rounded down (exact below 100 ms)."""
    p99_ms: int
    """The 99th percentile of the tries' durations (nearest rank), to two significant digits rounded down."""
    last_failure_at_ms: int | None
    """When the last failed try of the period started; None when none failed."""
    last_failure: str
    """Why that try failed (``HTTP 500``, ``connection failed: …``); empty when none failed."""

    @property
    def success_rate(self) -> float:
        """The share of tries that sent their webhook, 0 to 1."""
        return self.successes / self.tries if self.tries else 0.0


@dataclass(frozen=True, slots=True)
class MinuteCounts:
    """How many of a client's webhooks ended in one minute, sent and failed, for ``GET /v1/webhook-stats``."""

    at_ms: int
    """The minute's start (a multiple of 60 000)."""
    sent: int
    failed: int
    """Failed for good: no try left, or their configuration disabled or removed."""


@dataclass(frozen=True, slots=True)
class FailedWebhook:
    """A webhook that ended failed (no try left, or its configuration disabled or removed), for ``status``."""

    id: str
    client_code: str
    table: str
    action: str
    endpoint: str
    tries: int
    last_failure: str
    failed_at_ms: int
    """When it ended failed: its last try's end, or when its configuration went."""


@dataclass(frozen=True, slots=True)
class CapturePosition:
    """How far a capture source has been recorded, and when its position last moved, for ``status``."""

    source: str
    client_code: str
    position: str
    updated_at_ms: int
    committed_at_ms: int | None = None
    """When the newest change of the batch that last moved it was committed in the source (None: not known)."""

    @property
    def lag_ms(self) -> int | None:
        """How far behind the source it was when its position last moved."""
        return None if self.committed_at_ms is None else max(self.updated_at_ms - self.committed_at_ms, 0)
