"""HTTP out: one aiohttp session, no redirects, the SSRF guard pinned to each connection.

Names are resolved by :class:`GuardedResolver`, which refuses a name when any address it resolves to is not
public. aiohttp connects to exactly the addresses the resolver returned, so the check cannot be dodged by a
name that resolves elsewhere between the check and the connection. Literal addresses never reach a resolver,
so they are checked before the request.
"""

from __future__ import annotations

import asyncio
import errno
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from webhook_manager import __version__
from webhook_manager.delivery.retry import parse_retry_after
from webhook_manager.domain.addresses import forbidden_reason, literal_address

USER_AGENT = f"webhook-manager/{__version__}"
ANSWER_READ_CAP = 64 * 1024
"""At most this much of a receiver's answer is read; the rest is dropped with the connection, so no answer,
however large, is held in memory."""


class BlockedAddress(OSError):
    """An endpoint resolved to an address webhooks may not be sent to."""


class GuardedResolver(AbstractResolver):
    """The default resolver, refusing names that resolve to loopback, private or other non-public addresses."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: Any = 0) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            address = literal_address(result["host"])
            reason = "not an IP address" if address is None else forbidden_reason(address)
            if reason is not None:
                raise BlockedAddress(f"blocked: {host} resolves to {result['host']}, {reason}")
        return results

    async def close(self) -> None:
        await self._inner.close()


@dataclass(frozen=True, slots=True)
class Answer:
    """How one POST ended: the status (None when there was no answer), a failure in plain words ("" on
    success), and the receiver's Retry-After in seconds."""

    status: int | None
    error: str
    retry_after_s: float | None = None


class Egress:
    """POSTs webhook bodies; one client session for the life of the process."""

    def __init__(self, *, timeout_s: float, accept_any_2xx: bool, allow_private: bool) -> None:
        self._timeout_s = timeout_s
        self._accept_any_2xx = accept_any_2xx
        self._allow_private = allow_private
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, yarl.URL] = {}  # parsing an endpoint once, not on every try

    async def start(self) -> None:
        """Open the client session (again, if it was open)."""
        await self.close()
        connector = aiohttp.TCPConnector(
            limit=0,  # the dispatcher caps tries in flight, per endpoint and in all
            resolver=None if self._allow_private else GuardedResolver(),
            ttl_dns_cache=10,
            enable_cleanup_closed=False,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            # aiohttp rounds deadlines of ceil_threshold seconds and more up to a whole second (5 s became up to
            # 6 s); a try's limit is the setting exactly.
            timeout=aiohttp.ClientTimeout(total=self._timeout_s, ceil_threshold=float("inf")),
            auto_decompress=False,
            skip_auto_headers=("Accept-Encoding",),
            headers={"User-Agent": USER_AGENT, "Content-Type": "application/json"},
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def refuse(self, endpoint: str) -> str | None:
        """Why a literal-address endpoint may not be tried, or None."""
        if self._allow_private:
            return None
        host = urlsplit(endpoint).hostname or ""
        address = literal_address(host)
        if address is None:
            return None
        reason = forbidden_reason(address)
        return None if reason is None else f"blocked: {address} is {reason}"

    def _url(self, endpoint: str) -> yarl.URL:
        """The endpoint parsed once, not on every try."""
        url = self._urls.get(endpoint)
        if url is None:
            if len(self._urls) > 10_000:
                self._urls.clear()
            url = self._urls[endpoint] = yarl.URL(endpoint)
        return url

    def _answer(self, status: int, headers: Mapping[str, str]) -> Answer:
        """How an answer with ``status`` ends the try."""
        if status == 200 or (self._accept_any_2xx and 200 <= status < 300):
            return Answer(status, "")
        retry_after = parse_retry_after(headers.get("Retry-After"), time.time())
        if 300 <= status < 400:
            return Answer(status, f"HTTP {status} (redirect not followed)", retry_after)
        return Answer(status, f"HTTP {status}", retry_after)

    async def post(self, endpoint: str, body: bytes, headers: dict[str, str]) -> Answer:
        """One try: POST ``body`` and tell how it ended, in the contract's words."""
        assert self._session is not None, "Egress.start() first"
        refused = self.refuse(endpoint)
        if refused is not None:
            return Answer(None, refused)
        try:
            async with self._session.post(
                self._url(endpoint), data=body, headers=headers, allow_redirects=False
            ) as response:
                await _drain(response, ANSWER_READ_CAP)
                return self._answer(response.status, response.headers)
        except TimeoutError:
            return Answer(None, f"timed out after {self._timeout_s:.1f} s")
        except aiohttp.ClientConnectorError as exc:
            return Answer(None, _connect_failure(exc))
        except aiohttp.ServerDisconnectedError:
            return Answer(None, "connection closed before an answer")
        except aiohttp.ClientOSError as exc:
            return Answer(None, _os_failure(exc))
        except aiohttp.ClientResponseError:
            # aiohttp's parser could not read the answer (it reports that as its own "400"); the receiver's
            # bytes are not repeated in the log
            return Answer(None, "malformed HTTP answer")
        except aiohttp.ClientError as exc:
            return Answer(None, f"HTTP error: {exc.__class__.__name__}: {exc}")
        except (ValueError, asyncio.InvalidStateError) as exc:
            return Answer(None, f"cannot send: {exc}")


async def _drain(response: aiohttp.ClientResponse, cap: int) -> None:
    """Read the answer's body up to ``cap`` bytes and drop it. Read whole, the connection goes back to the pool;
    cut short, aiohttp closes it on release."""
    read = 0
    while read < cap:
        chunk = await response.content.read(min(cap - read, 16384))
        if not chunk:
            return
        read += len(chunk)


def _connect_failure(exc: aiohttp.ClientConnectorError) -> str:
    cause: BaseException | None = exc.os_error
    while cause is not None and not isinstance(cause, BlockedAddress):
        cause = cause.__cause__
    if isinstance(cause, BlockedAddress):
        return str(cause)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"cannot resolve {exc.host}"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientConnectorSSLError) or isinstance(
        exc.os_error, ssl.SSLError
    ):
        return f"TLS error: {exc.os_error}"
    return _os_failure(exc.os_error)


def _os_failure(exc: OSError) -> str:
    if exc.errno == errno.ECONNREFUSED:
        return "connection refused"
    if exc.errno == errno.ECONNRESET:
        return "connection reset"
    if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return "host unreachable"
    return f"connection failed: {exc.strerror or exc}"
