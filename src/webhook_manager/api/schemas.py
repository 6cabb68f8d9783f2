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
