"""Pydantic models that describe the API in its OpenAPI document, and the answers of each operation.

They document; they do not validate (see webhook_manager.ingest). Key spelling follows Erply's Swagger v1.18.3
exactly, odd casing included. Patterns are JSON Schema (ECMA) regular expressions, anchored; the fuzzer test
(tests/integration/test_openapi_fuzz.py) checks that the handlers accept what they match and refuse the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

from webhook_manager.accounts import CLIENT_CODE_PATTERN
from webhook_manager.domain.model import Action, EventStatus, WebhookStatus
from webhook_manager.ingest.configuration_input import (
    HEADER_NAME,
    HEADER_VALUE,
    HOP_BY_HOP,
    MAX_ENDPOINT_LENGTH,
    MAX_HEADER_NAME_LENGTH,
    MAX_HEADER_VALUE_LENGTH,
    MAX_HEADERS,
    MAX_SECRET_LENGTH,
    SENDING,
    SET_BY_SERVICE,
)
from webhook_manager.ingest.event_input import MAX_ITEMS, MAX_ROW_ID
from webhook_manager.ingest.fields import TABLE_PATTERN
from webhook_manager.ingest.idempotency import HEADER, KEY_PATTERN, MAX_KEY_LENGTH
from webhook_manager.ingest.resend_filter import TIME as RESEND_TIME

ID_PATTERN = "^[0-9a-f]{24}$"
TABLE = f"^{TABLE_PATTERN.pattern}$"
CLIENT_CODE = f"^{CLIENT_CODE_PATTERN.pattern}$"
_UTC_MS = "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z"
TIME_PATTERN = f"^{_UTC_MS}$"

# Timestamps of events: real dates of the Gregorian calendar (leap days in leap years only).
_LEAP_YEAR = "(?:[1-9][0-9](?:0[48]|[2468][048]|[13579][26])|(?:[2468][048]|[13579][26])00)"
_TIME_OF_DAY = "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"


def _date(year: str) -> str:
    days = "(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31"
    return f"(?:{year}-(?:{days})|{_LEAP_YEAR}-02-29)"


# RFC 3339 times are converted to the service's zone, which may move them out of 1000–9999 in the first and last
# years; the pattern leaves those two years out of that form.
_INNER_YEAR = "(?:100[1-9]|10[1-9][0-9]|1[1-9][0-9]{2}|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"
_OFFSET = "(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
TIMESTAMP_PATTERN = (
    f"^(?:{_date('[1-9][0-9]{3}')} {_TIME_OF_DAY}"
    f"|{_date(_INNER_YEAR)}[Tt ]{_TIME_OF_DAY}(?:\\.[0-9]{{1,9}})?{_OFFSET})$"
)
RFC3339_PATTERN = f"^{RESEND_TIME.pattern}$"
"""An RFC 3339 time with its zone, as the second form of TIMESTAMP_PATTERN: the bounds of a bulk resend."""

# An endpoint as it is usually written: http(s), a host name or IPv4 address, a port, then printable ASCII
# (no backslash). The handler takes more (IPv6 literals, international names, user info, any host both URL
# parsers read alike) and, without allow_private_endpoints, refuses private addresses and localhost.
_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PORT = "(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
ENDPOINT_PATTERN = f"^[Hh][Tt][Tt][Pp][Ss]?://{_LABEL}(?:\\.{_LABEL})*(?::{_PORT})?(?:[/?#][!-\\[\\]-~]*)?$"

MAX_REPORT_MINUTES = 1440
"""The longest period of the delivery reports (``minutes``), a day: the store keeps finished webhooks
``retention_hours``, 24 by default."""

Id = Annotated[str, Field(pattern=ID_PATTERN, examples=["5dd63cc81810fd18722e23df"])]
Table = Annotated[str, Field(pattern=TABLE, description="A table or custom event name", examples=["product"])]
Time = Annotated[
    str,
    Field(pattern=TIME_PATTERN, json_schema_extra={"format": "date-time"}, examples=["2019-11-21T14:01:13.471Z"]),
]
LaterTime = Annotated[str, Field(pattern=f"^(?:{_UTC_MS})?$", description='"" until it has happened')]
Endpoint = Annotated[str, Field(max_length=MAX_ENDPOINT_LENGTH, examples=["https://test.receiver"])]
Secret = Annotated[str, Field(max_length=MAX_SECRET_LENGTH, pattern="^[^\\x00]*$", examples=["mySecretWord"])]


def _any_case(word: str) -> str:
    """A pattern of ``word`` in any case (JSON Schema patterns have no flags)."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)


# A custom header's name: an RFC 7230 token that is not a name the service sets, a hop-by-hop one or Expect.
_RESERVED = "|".join(_any_case(name) for name in (*SET_BY_SERVICE, *HOP_BY_HOP, *SENDING))
HEADER_NAME_PATTERN = f"^(?!(?:{_RESERVED})$|{_any_case('webhook-')}|{_any_case('proxy-')}){HEADER_NAME.pattern}$"
HEADERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "maxProperties": MAX_HEADERS,
    "propertyNames": {"maxLength": MAX_HEADER_NAME_LENGTH, "pattern": HEADER_NAME_PATTERN},
    "additionalProperties": {
        "type": "string",
        "maxLength": MAX_HEADER_VALUE_LENGTH,
        "pattern": f"^{HEADER_VALUE.pattern}$",
    },
}
"""Custom headers (extension). Beyond what the schema can say: names are case-insensitive, so two that differ
only in case are refused."""


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


class _Output(BaseModel):
    """An answer: exactly these keys."""

    model_config = ConfigDict(extra="forbid")


class InputWebhookConfiguration(BaseModel):
    """A configuration to create, or the full replacement of one; other keys are ignored."""

    table: Table
    action: Action
    endpoint: Annotated[
        str,
        Field(
            max_length=MAX_ENDPOINT_LENGTH,
            pattern=ENDPOINT_PATTERN,
            description="Absolute http(s) URL the webhooks are POSTed to, usually as the pattern shows (IPv6 "
            "literals and international names are taken too); private addresses and localhost are refused unless "
            "allow_private_endpoints is on",
            examples=["https://my.receiver"],
        ),
    ]
    secret: Annotated[
        Secret,
        Field(
            description="Key of the HMAC-SHA256 in every webhook; may be empty. A new one in a replacement keeps "
            "the old one signing webhook-signature beside it for secret_grace_h hours"
        ),
    ]
    disabled: bool = Field(False, description="Create or keep the configuration inactive")
    headers: Annotated[dict[str, str], WithJsonSchema(HEADERS_SCHEMA)] = Field(
        default_factory=dict,
        description="Extension: headers sent with every try of its webhooks, at most 20, names case-insensitive "
        "and none the service sets (Content-Type, Content-Length, Host, User-Agent, webhook-*) or hop-by-hop; "
        "a replacement without it has none",
        examples=[{"Authorization": "Bearer 3f9a0c1d"}],
    )


class WebhookConfiguration(_Output):
    """A stored configuration."""

    id: Id
    clientcode: Annotated[str, Field(pattern=CLIENT_CODE, examples=["100"])]
    table: Table
    action: Action
    endpoint: Endpoint
    secret: Secret
    disabled: bool
    createdat: Time
    updatedat: Time
    headers: (
        Annotated[dict[str, str], WithJsonSchema({**HEADERS_SCHEMA, "minProperties": 1})] | SkipJsonSchema[None]
    ) = Field(
        None,
        description="Extension, only when it has some: the headers sent with every try",
        json_schema_extra=_no_default,
    )
    previousSecretUntil: Time | SkipJsonSchema[None] = Field(
        None,
        description="Extension, only while a replaced secret still signs webhook-signature beside the new one: "
        "until when (the replaced secret itself is never shown)",
        json_schema_extra=_no_default,
    )


class OutputError(_Output):
    """Every error answer of the /v1 API and of /readyz."""

    error: str = Field(examples=["table: is required"])


class OutputOK(_Output):
    """The answer to a removal."""

    message: Literal["configuration removed"]


class InputEvent(BaseModel):
    """One event; other keys are ignored."""

    rowId: int | None = Field(0, ge=0, le=MAX_ROW_ID, description="The row's id; 0 (or null) when there is none")
    timestamp: Annotated[str, Field(pattern=TIMESTAMP_PATTERN)] | None = Field(
        None,
        description="When it happened: 'YYYY-MM-DD HH:MM:SS' in the service's zone, or RFC 3339 with a zone; "
        "years 1000-9999; null or missing is now",
        examples=["2020-01-01 00:00:00"],
    )
    data: Any = Field(None, description="Any JSON, sent along in the webhook")


class InputEvents(BaseModel):
    """Events of one table and action; other keys are ignored."""

    table: Table
    action: Action
    items: list[InputEvent] = Field(min_length=1, max_length=MAX_ITEMS)


class RecordedEvents(_Output):
    """How many events came, and how many matched an enabled configuration and were kept."""

    received: int = Field(ge=1, le=MAX_ITEMS)
    recorded: int = Field(ge=0, le=MAX_ITEMS)


class OutputEvent(_Output):
    """A recorded event (Erply's models.OutputEvent)."""

    id: Id
    table: Table
    action: Action
    rowID: int = Field(ge=0, le=MAX_ROW_ID)
    status: EventStatus
    eventDate: Time
    createdAt: Time
    processedAt: LaterTime


class OutputWebhook(_Output):
    """A webhook in the delivery log (Erply's models.OutputWebhook)."""

    id: Id
    table: Table
    action: Action
    endpoint: Endpoint
    eventCount: int = Field(ge=1)
    status: WebhookStatus
    tries: int = Field(ge=0)
    lastFailure: str = Field(description='The last failure in plain words; "" until a try fails')
    createdAt: Time
    processedAt: LaterTime


class OutputAttempt(_Output):
    """One try of a webhook."""

    at: Time
    durationMs: int = Field(ge=0)
    httpStatus: int | None = Field(ge=100, le=599, description="null when there was no answer")
    error: str = Field(description='"" on success')


class WebhookDetail(OutputWebhook):
    """A webhook with its exact body and its tries (extension)."""

    payload: str = Field(description="The exact body sent")
    attempts: list[OutputAttempt]


def _time_bound(example: str) -> Callable[[dict[str, Any]], None]:
    def document(schema: dict[str, Any]) -> None:
        _no_default(schema)
        schema["examples"] = [example]  # no format date-time: its checkers refuse the space RFC 3339 allows

    return document


class InputResendFilter(BaseModel):
    """Which of the client's failed webhooks a bulk resend gives a new round of tries: those of ``action`` and
    every other field given (none: all of them); no other key is taken."""

    model_config = ConfigDict(extra="forbid")

    table: Table | SkipJsonSchema[None] = Field(None, description="Only this table", json_schema_extra=_no_default)
    action: Action | SkipJsonSchema[None] = Field(None, json_schema_extra=_no_default)
    status: Literal["failed"] | SkipJsonSchema[None] = Field(
        None, description="Only failed webhooks are resent, so failed is the only status", json_schema_extra=_no_default
    )
    since: Annotated[str, Field(pattern=RFC3339_PATTERN)] | SkipJsonSchema[None] = Field(
        None,
        description="Only webhooks created (createdAt) at or after this RFC 3339 time (with its zone)",
        json_schema_extra=_time_bound("2020-01-01T00:00:00Z"),
    )
    until: Annotated[str, Field(pattern=RFC3339_PATTERN)] | SkipJsonSchema[None] = Field(
        None,
        description="Only webhooks created before this RFC 3339 time (with its zone)",
        json_schema_extra=_time_bound("2020-01-02T00:00:00Z"),
    )
    configurationId: Id | SkipJsonSchema[None] = Field(
        None, description="Only webhooks of this configuration", json_schema_extra=_no_default
    )


class ResentWebhooks(_Output):
    """How many failed webhooks were given a new round of tries."""

    resent: int = Field(ge=0)


class CapturedType(_Output):
    """A table the client's capture sources watch: its changes become events (docs/capture.md)."""

    table: Table
    actions: list[Literal["insert", "update", "delete"]] = Field(
        min_length=3, max_length=3, json_schema_extra={"uniqueItems": True}
    )
    rowIdGuaranteed: bool = Field(
        description="true: rowId is the value of the row's row-id column (its single integer primary key, or the "
        "column configured for it); false: it is or may be 0"
    )
    content: Literal["generic", "enriched"] = Field(
        description="generic: data is null; enriched: data is the row after an insert or update (null for delete)"
    )


class CustomType(_Output):
    """A custom event name: a table the client has sent events of to POST /v1/event, and the actions sent."""

    table: Table
    actions: list[Action] = Field(min_length=1, max_length=len(Action), json_schema_extra={"uniqueItems": True})


class WebhookTypes(_Output):
    """What fires for the client (extension); configurations may name any table."""

    captured: list[CapturedType] = Field(description="By table name")
    custom: list[CustomType] = Field(description="By table name; the only ones that may carry confirm")


class EndpointHealth(_Output):
    """How the tries of the client's webhooks to one endpoint went in the last minutes (extension)."""

    endpoint: Endpoint
    tries: int = Field(ge=1)
    successes: int = Field(ge=0, description="Tries that sent their webhook")
    successRate: float = Field(ge=0, le=1, description="successes / tries")
    p50Ms: int = Field(
        ge=0, description="The median try's duration, to two significant digits rounded down (exact below 100 ms)"
    )
    p99Ms: int = Field(ge=0, description="The 99th percentile (nearest rank) of the tries' durations, likewise")
    lastFailureAt: Time | None = Field(description="When the last failed try started; null when none failed")
    lastFailure: str | None = Field(
        description="Why it failed, in plain words (`HTTP 500`, `timed out after 5.0 s`, …); null when none failed"
    )


class MinuteCount(_Output):
    """How many of the client's webhooks ended in one minute (by when their last try ended)."""

    at: Annotated[Time, Field(description="The minute's start")]
    sent: int = Field(ge=0)
    failed: int = Field(ge=0, description="Also those failed because their configuration was disabled or removed")


class WebhookStats(_Output):
    """The client's webhooks that ended sent or failed in each of the last minutes (extension)."""

    from_: Annotated[Time, Field(alias="from", description="The first minute's start")]
    minutes: list[MinuteCount] = Field(
        min_length=1, max_length=MAX_REPORT_MINUTES, description="One per minute, oldest first; the current one last"
    )


class Health(_Output):
    """The process runs, or the store answers."""

    status: Literal["ok"]


def _password(schema: dict[str, Any]) -> None:
    _no_default(schema)
    schema["format"] = "password"


class ErplyRequest(BaseModel):
    """The fields of a call to ``POST /api/``: a form, or a JSON object of strings, integers and nulls."""

    request: Literal[
        "verifyUser",
        "getSessionKeyInfo",
        "getSessionKeyUser",
        "getIdentityToken",
        "verifyIdentityToken",
        "getServiceEndpoints",
    ] = Field(description="Any other value answers 1006")
    clientCode: str = Field(examples=["100"])
    username: str | SkipJsonSchema[None] = Field(None, description="verifyUser", json_schema_extra=_no_default)
    password: str | SkipJsonSchema[None] = Field(None, description="verifyUser", json_schema_extra=_password)
    sessionLength: int = Field(3600, ge=1, description="verifyUser: seconds; above 86400 is cut to 86400")
    doNotGenerateIdentityToken: Literal[0, 1] = Field(0, description="verifyUser: 1 leaves identityToken out")
    sessionKey: str | SkipJsonSchema[None] = Field(
        None,
        description="getSessionKeyInfo, getSessionKeyUser, getIdentityToken",
        json_schema_extra=_no_default,
    )
    jwt: str | SkipJsonSchema[None] = Field(None, description="verifyIdentityToken", json_schema_extra=_no_default)


class ErplyStatus(_Output):
    """The outcome of a call to ``POST /api/`` (Erply's status object)."""

    request: str = Field(description="The request field as given")
    requestUnixTime: int
    responseStatus: Literal["ok", "error"]
    errorCode: int = Field(ge=0, description="0 on success; the codes are listed in docs/api.md")
    generationTime: float = Field(ge=0)
    recordsTotal: int = Field(ge=0, le=1)
    recordsInResponse: int = Field(ge=0, le=1)
    errorField: str | SkipJsonSchema[None] = Field(
        None, description="With codes 1006 and 1016: the field at fault", json_schema_extra=_no_default
    )


_TOKEN = "An identity token (a JWT) of the session, also good in a `jwt` header of `/v1` calls"


class VerifyUserRecord(_Output):
    """A new session."""

    userID: str = Field(pattern="^[0-9]+$")
    userName: str
    sessionKey: str
    sessionLength: int = Field(ge=1, le=86400)
    identityToken: str | SkipJsonSchema[None] = Field(None, description=_TOKEN, json_schema_extra=_no_default)
    token: str | SkipJsonSchema[None] = Field(None, description=_TOKEN, json_schema_extra=_no_default)


class SessionKeyUserRecord(_Output):
    """The user of a session key (getSessionKeyUser)."""

    userID: str = Field(pattern="^[0-9]+$")
    userName: str
    sessionKey: str
    sessionLength: int = Field(ge=1)
    ipAddress: str
    identityToken: str = Field(description=_TOKEN)
    token: str = Field(description=_TOKEN)


class ServiceEndpoint(_Output):
    """Where one service is."""

    url: str
    documentation: str
    isSandbox: bool


class ServiceEndpointsRecord(_Output):
    """The services this one provides, by Erply's names for them (getServiceEndpoints)."""

    webhook: ServiceEndpoint


class IdentityTokenRecord(_Output):
    """getIdentityToken: ``records`` is this object itself, as in Erply."""

    identityToken: str = Field(description=_TOKEN)


class VerifiedTokenRecord(_Output):
    """verifyIdentityToken: a new session key of the token's user; ``records`` is this object itself."""

    sessionKey: str


class SessionKeyInfoRecord(_Output):
    """When a session key was made and when it expires (Unix times, as strings)."""

    creationUnixTime: str = Field(pattern="^[0-9]+$")
    expireUnixTime: str = Field(pattern="^[0-9]+$")


class ErplyAnswer(_Output):
    """Every answer of ``POST /api/``, always with HTTP 200; on an error ``records`` is empty."""

    status: ErplyStatus
    records: (
        Annotated[
            list[VerifyUserRecord | SessionKeyInfoRecord | SessionKeyUserRecord | ServiceEndpointsRecord],
            Field(max_length=1),
        ]
        | IdentityTokenRecord
        | VerifiedTokenRecord
    ) = Field(description="A list of at most one record; an object for getIdentityToken and verifyIdentityToken")


# Why each error status is answered; every one has the body {"error": "…"}.
_WHY = {
    400: "Bad input; the message starts with the field (`id: …`, `items[3].rowId: …`), or a cap of the settings",
    401: "The clientCode or sessionKey header is missing, or the session is unknown, expired or another client's",
    404: "No such id for this client",
    409: "Only a failed webhook can be resent",
    413: "The body is too large",
    503: "The store cannot be reached or cannot write; nothing was changed",
}

Responses = dict[int | str, dict[str, Any]]


def answers(ok: Any, *errors: int, links: dict[str, Any] | None = None, why: dict[int, str] | None = None) -> Responses:
    """An operation's answers: 200 with ``ok``, and each of ``errors`` with the error shape (``why`` words an
    error of this operation otherwise than the usual)."""
    success: dict[str, Any] = {"model": ok, "description": "OK"}
    if links:
        success["links"] = links
    reasons = {**_WHY, **(why or {})}
    return {200: success, **{status: {"model": OutputError, "description": reasons[status]} for status in errors}}


def link(operation_id: str, **parameters: str) -> dict[str, Any]:
    """An OpenAPI link: ``parameters`` of ``operation_id`` taken from this answer (runtime expressions)."""
    return {"operationId": operation_id, "parameters": parameters}


def query_parameters(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for a call whose fields come in the query string: one parameter per field of ``model``."""
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    parameters = [
        {"name": name, "in": "query", "required": name in required, "schema": field}
        for name, field in schema["properties"].items()
    ]
    return {"parameters": parameters}


IDEMPOTENCY_KEY: dict[str, Any] = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": "Optional, per client, kept 24 hours: a repeat of the call with the same key and the same body "
    "bytes answers the first call's answer and stores nothing; the same key with another body answers 409. "
    "Printable ASCII, no space at either end",
    "schema": {
        "type": "string",
        "maxLength": MAX_KEY_LENGTH,
        "pattern": f"^{KEY_PATTERN.pattern}$",
        "examples": ["9f2c1e4a-orders-2020-01-01"],
    },
}
"""The ``Idempotency-Key`` header of ``POST /v1/event`` (docs/api.md)."""


def request_body(model: type[BaseModel], *media_types: str) -> dict[str, Any]:
    """``openapi_extra`` for a body the handler reads itself; api/openapi.py adds ``model`` to the components."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {media: {"schema": schema} for media in media_types}}}
