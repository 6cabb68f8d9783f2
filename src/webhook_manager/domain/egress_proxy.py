"""The egress proxy's settings, read and checked, and which hosts go direct (docs/settings.md). Pure.

A proxy is ``http://[user:password@]host:port``; the hosts that bypass it (``egress_no_proxy``) are names, which
match themselves only, suffixes with a leading dot (``.internal``), which match every name under them, and IP
addresses, which match an endpoint whose host is that address.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from webhook_manager.domain.addresses import literal_address, normalize_host

PROXY_FORM = "http://[user:password@]host:port"
_NAME = re.compile(r"(?:[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?)*")


def proxy_problem(value: str) -> str | None:
    """Why ``value`` is not a proxy URL (:data:`PROXY_FORM`), or None. The answer never repeats the value, which
    may hold a password."""
    if not value.isprintable() or " " in value:
        return f"must be {PROXY_FORM}, without spaces or control characters"
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return f"must be {PROXY_FORM}, with a port from 1 to 65535"
    if parts.scheme.lower() != "http":
        return f"must be {PROXY_FORM} (only plain http:// proxies; https:// endpoints go through them by CONNECT)"
    host = parts.hostname or ""
    if not host or (literal_address(host) is None and not _NAME.fullmatch(host)):
        return f"must be {PROXY_FORM}: no host name or IP address"
    if port is None or port == 0:
        return f"must be {PROXY_FORM}: the port is missing"
    if parts.path not in ("", "/") or parts.query or parts.fragment or value.endswith(("?", "#")):
        return f"must be {PROXY_FORM}, without a path, query or fragment"
    return None


def proxy_address(value: str) -> str:
    """The proxy's ``host:port`` without credentials, for messages."""
    parts = urlsplit(value)
    host = parts.hostname or ""
    return f"[{host}]:{parts.port}" if ":" in host else f"{host}:{parts.port}"


def no_proxy_entries(value: str | Iterable[str]) -> tuple[str, ...]:
    """The entries of ``egress_no_proxy`` (comma-separated, or a list), normalised; ValueError naming a bad one."""
    items = value.split(",") if isinstance(value, str) else list(value)
    entries: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError("entries must be strings: host names, .suffixes or IP addresses")
        entry = normalize_host(item.strip())
        if not entry:
            continue
        address = literal_address(entry)
        if address is not None:
            entries.append(str(address))
        elif _NAME.fullmatch(entry.removeprefix(".")):
            entries.append(entry)
        else:
            raise ValueError(f"{item.strip()!r} is not a host name, a .suffix or an IP address")
    return tuple(dict.fromkeys(entries))


def goes_direct(host: str, entries: Iterable[str]) -> bool:
    """Whether an endpoint on ``host`` bypasses the proxy by ``entries`` (from :func:`no_proxy_entries`)."""
    host = normalize_host(host)
    address = literal_address(host)
    for entry in entries:
        if address is not None:
            if str(address) == entry:
                return True
        elif host == entry or (entry.startswith(".") and host.endswith(entry)):
            return True
    return False
