"""Which endpoint addresses a webhook may be sent to: the SSRF rules of docs/payload.md. Pure."""

from __future__ import annotations

import ipaddress
import socket
import unicodedata

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def forbidden_reason(address: IPAddress) -> str | None:  # noqa: C901 - one flat rule per kind of address
    """Why ``address`` may not receive webhooks (loopback, private, …), or None when it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address wrapped in IPv6 (::ffff:a.b.c.d, NAT64 64:ff9b::/96) reaches that IPv4 address.
        # So do 6to4 (2002::/16) and Teredo (2001::/32) addresses.
        inner = address.ipv4_mapped or address.sixtofour
        if inner is None and address.teredo is not None:
            inner = address.teredo[1]
        if inner is None and address in _NAT64:
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None:
            return forbidden_reason(inner)
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "a site-local address"  # fec0::/10: deprecated, but routed inside sites that still use it
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "a reserved address"
    return None


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def literal_address(host: str) -> IPAddress | None:
    """The address ``host`` spells literally, or None when it is a name.

    Besides dotted quads and IPv6, this knows the short and numeric IPv4 forms (``127.1``, ``2130706433``,
    ``0x7f.0.0.1``) that the system resolver accepts, so they cannot slip past the configuration check.
    """
    host = normalize_host(host).strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def normalize_host(host: str) -> str:
    """The host as a resolver sees it: compatibility forms folded (NFKC, as IDNA does: ``①`` → ``1``),
    the IDNA full stops (``。`` ``．`` ``｡``) turned into dots, lower case, without a trailing dot."""
    host = unicodedata.normalize("NFKC", host).replace("\u3002", ".")
    return host.lower().rstrip(".")


def is_localhost_name(host: str) -> bool:
    """``localhost`` and names under it always mean loopback (RFC 6761)."""
    host = normalize_host(host)
    return host == "localhost" or host.endswith(".localhost")
