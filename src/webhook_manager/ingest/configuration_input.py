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
MAX_HEADERS = 20
MAX_HEADER_NAME_LENGTH = 256
MAX_HEADER_VALUE_LENGTH = 1024
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
"""An RFC 7230 token."""
HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")
"""Printable ASCII, spaces and tabs: no CR, LF, NUL or other control characters, nothing a receiver could read
other than as sent."""
SET_BY_SERVICE = ("content-type", "content-length", "host", "user-agent")
"""Header names the service sets itself; ``webhook-*`` too (the Standard Webhooks headers)."""
HOP_BY_HOP = ("connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade")
"""Hop-by-hop header names (RFC 7230 6.1); ``proxy-*`` too."""
SENDING = ("expect",)
"""Header names that would change how the request is sent (``Expect: 100-continue`` holds the body back)."""
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
    headers = check_headers(body.get("headers", {}))
    return ConfigurationInput(
        table=table, action=action, endpoint=endpoint, secret=secret, disabled=disabled, headers=headers
    )


def check_headers(value: Any) -> dict[str, str]:
    """Custom headers (extension): a JSON object of at most 20 names (RFC 7230 tokens, none the service sets or a
    hop-by-hop one, no two alike but for case) to values of at most 1024 printable ASCII characters. Errors name
    the header (``headers.X-Token: …``), never its value."""
    if not isinstance(value, dict):
        raise InvalidInput("headers", "must be a JSON object of header names to values")
    if len(value) > MAX_HEADERS:
        raise InvalidInput("headers", f"must hold at most {MAX_HEADERS} headers")
    seen: dict[str, str] = {}
    for name, given in value.items():
        field = f"headers.{name if len(name) <= MAX_HEADER_NAME_LENGTH else name[:64] + '…'}"
        problem = header_name_problem(name)
        if problem is not None:
            raise InvalidInput(field, problem)
        if name.lower() in seen:
            raise InvalidInput(field, f"repeats {seen[name.lower()]} (header names are case-insensitive)")
        seen[name.lower()] = name
        if not isinstance(given, str):
            raise InvalidInput(field, "must be a string")
        if len(given) > MAX_HEADER_VALUE_LENGTH:
            raise InvalidInput(field, f"must be at most {MAX_HEADER_VALUE_LENGTH} characters")
        if HEADER_VALUE.fullmatch(given) is None:
            raise InvalidInput(field, "must be printable ASCII or tabs (no CR, LF, NUL or other control characters)")
    return dict(value)


def header_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a custom header's name, or None."""
    if len(name) > MAX_HEADER_NAME_LENGTH:
        return f"a header name must be at most {MAX_HEADER_NAME_LENGTH} characters"
    if HEADER_NAME.fullmatch(name) is None:
        return "is not a header name (an RFC 7230 token: letters, digits and !#$%&'*+-.^_`|~)"
    lowered = name.lower()
    if lowered in SET_BY_SERVICE or lowered.startswith("webhook-"):
        return "is set by the service"
    if lowered in HOP_BY_HOP or lowered.startswith("proxy-"):
        return "is a hop-by-hop header"
    if lowered in SENDING:
        return "would change how the request is sent"
    return None


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
