"""A configuration as a client sends it (Erply's InputWebhookConfiguration) → a checked domain value. Pure."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import yarl

from webhook_manager.domain.addresses import forbidden_reason, is_localhost_name, literal_address
from webhook_manager.domain.errors import InvalidInput
from webhook_manager.domain.model import ConfigurationInput
from webhook_manager.ingest.fields import check_action, check_table

MAX_ENDPOINT_LENGTH = 2048
MAX_SECRET_LENGTH = 256
# A host name as the sender asks a resolver for it: letters, digits, '-', '_' and dots (international names
# arrive here in their xn-- form).
_HOST_NAME = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?")


def parse_configuration_input(body: Any, *, allow_private: bool) -> ConfigurationInput:
    """Check a decoded JSON body as Erply's InputWebhookConfiguration; raise InvalidInput naming the field."""
    if not isinstance(body, dict):
        raise InvalidInput("body", "must be a JSON object")
    table = check_table(_required(body, "table"))
    action = check_action(_required(body, "action"))
    endpoint = check_endpoint(_required(body, "endpoint"), allow_private=allow_private)
    secret = _required(body, "secret")
    if not isinstance(secret, str):
        raise InvalidInput("secret", "must be a string")
    if len(secret) > MAX_SECRET_LENGTH:
        raise InvalidInput("secret", f"must be at most {MAX_SECRET_LENGTH} characters")
    if "\x00" in secret:
        raise InvalidInput("secret", "must not contain NUL characters")  # no text column can hold one
    disabled = body.get("disabled", False)
    if not isinstance(disabled, bool):
        raise InvalidInput("disabled", "must be true or false")
    return ConfigurationInput(table=table, action=action, endpoint=endpoint, secret=secret, disabled=disabled)


def _required(body: dict[str, Any], field: str) -> Any:
    if field not in body:
        raise InvalidInput(field, "is required")
    return body[field]


def check_endpoint(value: Any, *, allow_private: bool, field: str = "endpoint") -> str:
    """An absolute http(s) URL of at most 2048 characters, not on a literal private address."""
    if not isinstance(value, str):
        raise InvalidInput(field, "must be a string")
    if len(value) > MAX_ENDPOINT_LENGTH:
        raise InvalidInput(field, f"must be at most {MAX_ENDPOINT_LENGTH} characters")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise InvalidInput(field, "must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a port out of range
        # The sender's own parser (aiohttp's): a URL it cannot read could never be sent, and it must name the
        # host that is checked here, whatever the two parsers make of backslashes, '@' or '[…]' in the authority.
        url = yarl.URL(value)
    except ValueError as exc:
        raise InvalidInput(field, f"is not a valid URL ({exc})") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidInput(field, "must be an absolute http:// or https:// URL")
    host = parts.hostname or ""
    problem = _host_problem(host, url)
    if problem is not None:
        raise InvalidInput(field, problem)
    refused = None if allow_private else _private_host(host) or _private_host(url.raw_host or "")
    if refused is not None:
        raise InvalidInput(field, f"{refused}; set WEBHOOK_MANAGER_ALLOW_PRIVATE_ENDPOINTS=true to allow it")
    return value


def _host_problem(host: str, url: yarl.URL) -> str | None:
    """What makes the host and port of an endpoint unusable, as urllib (``host``) and the sender read them."""
    if not host or not url.raw_host:
        return "must name a host"
    if "%" in host or "%" in url.raw_host:
        return "must not percent-encode its host"
    if literal_address(url.raw_host) is None and _HOST_NAME.fullmatch(url.raw_host) is None:
        return "must name a host by a domain name or an IP address"
    if url.explicit_port == 0:
        return "port must be 1 to 65535"
    return None


def _private_host(host: str) -> str | None:
    """Why a host given literally is not public (``127.0.0.1 is a loopback address``), or None."""
    address = literal_address(host)
    if address is None:
        return "localhost is a loopback address" if is_localhost_name(host) else None
    reason = forbidden_reason(address)
    return None if reason is None else f"{address} is {reason}"
