"""Pydantic models that describe the API in its OpenAPI document.

They document; they do not validate hot paths (see webhook_manager.validation). Key spelling follows
Erply's Swagger v1.18.3 exactly, odd casing included.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class InputWebhookConfiguration(BaseModel):
    """A configuration to create, or the full replacement of one."""

    table: str = Field(
        description="A table or custom event name: 1-64 characters of A-Z a-z 0-9 _ . -", examples=["product"]
    )
    action: str = Field(description="insert, update, delete or confirm", examples=["insert"])
    endpoint: str = Field(
        description="Absolute http(s) URL the webhooks are POSTed to (at most 2048 characters)",
        examples=["https://my.receiver"],
    )
    secret: str = Field(
        description="Key of the HMAC-SHA256 in every webhook (at most 256 characters, may be empty)",
        examples=["mySecretWord"],
    )
    disabled: bool = Field(False, description="Create or keep the configuration inactive")


class WebhookConfiguration(BaseModel):
    """A stored configuration."""

    id: str = Field(examples=["5dd63cc81810fd18722e23df"])
    clientcode: str = Field(examples=["100"])
    table: str = Field(examples=["product"])
    action: str = Field(examples=["insert"])
    endpoint: str = Field(examples=["https://test.receiver"])
    secret: str = Field(examples=["mySecretWord"])
    disabled: bool = Field(examples=[False])
    createdat: str = Field(examples=["2019-11-21T14:01:13.471Z"])
    updatedat: str = Field(examples=["2019-11-21T14:01:13.471Z"])


class OutputError(BaseModel):
    """Every error answer of the /v1 API."""

    error: str = Field(examples=["table: is required"])


class OutputOK(BaseModel):
    """The answer to a removal."""

    message: str = Field(examples=["configuration removed"])


ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": OutputError, "description": "Bad Request"},
    401: {"model": OutputError, "description": "Unauthorized"},
    503: {"model": OutputError, "description": "Service Unavailable"},
}
NOT_FOUND: dict[int | str, dict[str, object]] = {404: {"model": OutputError, "description": "Not Found"}}


class InputEvent(BaseModel):
    """One event."""

    rowId: int = Field(0, ge=0, description="The row's id; 0 when there is none")
    timestamp: str | None = Field(
        None,
        description="When it happened: 'YYYY-MM-DD HH:MM:SS' in the service's zone, or RFC 3339; default now",
        examples=["2020-01-01 00:00:00"],
    )
    data: object | None = Field(None, description="Any JSON, sent along in the webhook")


class InputEvents(BaseModel):
    """Events of one table and action."""

    table: str = Field(examples=["product"])
    action: str = Field(examples=["update"])
    items: list[InputEvent] = Field(min_length=1, max_length=10000)


class RecordedEvents(BaseModel):
    """How many events came, and how many matched an enabled configuration and were kept."""

    received: int
    recorded: int


class OutputEvent(BaseModel):
    """A recorded event (Erply's models.OutputEvent)."""

    id: str
    table: str
    action: str
    rowID: int
    status: str = Field(examples=["processed"])
    eventDate: str
    createdAt: str
    processedAt: str


class OutputWebhook(BaseModel):
    """A webhook in the delivery log (Erply's models.OutputWebhook)."""

    id: str
    table: str
    action: str
    endpoint: str
    eventCount: int
    status: str = Field(examples=["sent"])
    tries: int
    lastFailure: str
    createdAt: str
    processedAt: str


class OutputAttempt(BaseModel):
    """One try of a webhook."""

    at: str
    durationMs: int
    httpStatus: int | None
    error: str


class WebhookDetail(OutputWebhook):
    """A webhook with its exact body and its tries (extension)."""

    payload: str
    attempts: list[OutputAttempt]
