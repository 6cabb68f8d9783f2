"""HTTP out: one aiohttp session, no redirects, the SSRF guard pinned to each connection.

Names are resolved by :class:`GuardedResolver`, which refuses a name when any address it resolves to is not
public. aiohttp connects to exactly the addresses the resolver returned, so the check cannot be dodged by a
name that resolves elsewhere between the check and the connection. Literal addresses never reach a resolver,
so they are checked before the request.

A kept-alive connection the receiver has closed (its keep-alive ran out) is no answer of the receiver: when
the request was not yet written on it, it goes again, once, on a new connection, within the same time limit
(:class:`_Body` knows whether it was written). A request that was written is never sent again by the egress.

With an egress proxy (``egress_proxy``), every try goes through it, but to hosts in ``egress_no_proxy``: plain
``http://`` endpoints as absolute-URI requests to the proxy, ``https://`` ones through a CONNECT tunnel (aiohttp's
``proxy=``). The connector then connects only to the proxy, whose address may be private, so it resolves with no
guard; the endpoint's name is resolved and checked here before each try instead (:meth:`Egress._check_target`),
and the proxy resolves it again (docs/reliability.md says what that means). A request not written on a kept-alive
connection to the proxy (or a tunnel through it) cannot have reached the proxy either, so it is sent again on a
new connection as above.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import select
import ssl
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver, AbstractStreamWriter, ResolveResult
from aiohttp.payload import BytesPayload
from aiohttp.resolver import DefaultResolver

from webhook_manager import __version__
from webhook_manager.delivery.retry import parse_retry_after
from webhook_manager.domain.addresses import forbidden_reason, literal_address
from webhook_manager.domain.egress_proxy import goes_direct, proxy_address

USER_AGENT = f"webhook-manager/{__version__}"
ANSWER_READ_CAP = 64 * 1024
"""At most this much of a receiver's answer is read; the rest is dropped with the connection, so no answer,
however large, is held in memory."""

DNS_TTL_S = 10
"""Resolved names are kept this long: by the connectors, and the check of a proxied endpoint's name."""

log = logging.getLogger("webhook_manager.egress")


BLOCKED = "blocked: "


class BlockedAddress(OSError):
    """An endpoint resolved to an address webhooks may not be sent to."""


class GuardedResolver(AbstractResolver):
    """A resolver (the default one unless ``inner`` is given), refusing names that resolve to loopback, private or
    other non-public addresses."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = DefaultResolver() if inner is None else inner
        self._owned = inner is None

    async def resolve(self, host: str, port: int = 0, family: Any = 0) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            address = literal_address(result["host"])
            reason = "not an IP address" if address is None else forbidden_reason(address)
            if reason is not None:
                raise BlockedAddress(f"blocked: {host} resolves to {result['host']}, {reason}")
        return results

    async def close(self) -> None:
        if self._owned:
            await self._inner.close()


@dataclass(frozen=True, slots=True)
class Answer:
    """How one POST ended: the status (None when there was no answer), a failure in plain words ("" on
    success), the receiver's Retry-After in seconds, and the kind of ending (``outcome``: one of
    :data:`OUTCOMES`, the metrics' label)."""

    status: int | None
    error: str
    retry_after_s: float | None = None
    outcome: str = "success"


class _NotSent(Exception):
    """A kept-alive connection failed before the request was written on it."""


class _Body(BytesPayload):
    """A webhook's body for one POST. On a connection that carried a request before (one in ``used``), it is not
    written when the receiver has closed the connection or sent something unasked (the loop may not have seen it
    yet); ``reused`` and ``written`` tell, after a failure, whether the request can have reached the receiver."""

    def __init__(self, body: bytes, used: weakref.WeakSet[Any] | None) -> None:
        super().__init__(body, content_type="application/json")
        self._used = used
        self.reused = False
        self.written = False

    async def write_with_length(self, writer: AbstractStreamWriter, content_length: int | None) -> None:
        self._check(writer)
        await super().write_with_length(writer, content_length)
        self.written = True

    async def write(self, writer: AbstractStreamWriter) -> None:  # what aiohttp before 3.12 calls
        self._check(writer)
        await super().write(writer)
        self.written = True

    def _check(self, writer: AbstractStreamWriter) -> None:
        protocol = getattr(writer, "protocol", None)
        if self._used is None or protocol is None:
            return
        if protocol not in self._used:
            self._used.add(protocol)
            return
        self.reused = True
        transport = getattr(writer, "transport", None)
        if transport is None or transport.is_closing() or _readable(transport):
            raise ConnectionResetError(errno.ECONNRESET, "the kept-alive connection was closed by the receiver")


def _readable(transport: asyncio.BaseTransport) -> bool:
    """True when an idle connection has something to read: the receiver closed or reset it, or sent bytes
    nobody asked for; either way it is not used."""
    sock = transport.get_extra_info("socket")
    if sock is None or not hasattr(select, "poll"):
        return False
    fd = sock.fileno()
    if fd < 0:
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class _Sessions(NamedTuple):
    """The client sessions of one way out: ``pooled`` keeps connections alive, ``fresh`` opens a new connection for
    each request (for a request sent again)."""

    pooled: aiohttp.ClientSession
    fresh: aiohttp.ClientSession


class Egress:
    """POSTs webhook bodies; one client session for the life of the process (and one for the egress proxy)."""

    def __init__(
        self,
        *,
        timeout_s: float,
        accept_any_2xx: bool,
        allow_private: bool,
        proxy: str | None = None,
        no_proxy: Sequence[str] = (),
        resolver: AbstractResolver | None = None,
    ) -> None:
        """``proxy`` and ``no_proxy`` are the settings ``egress_proxy`` and ``egress_no_proxy`` (checked there);
        ``resolver`` resolves endpoints' names (default: the system's; the proxy's own name always is)."""
        self._timeout_s = timeout_s
        self._accept_any_2xx = accept_any_2xx
        self._allow_private = allow_private
        self._proxy = None if proxy is None else yarl.URL(proxy)
        self._proxy_at = "" if proxy is None else proxy_address(proxy)  # no credentials: for messages
        self._no_proxy = tuple(no_proxy)
        self._resolver = resolver
        self._direct: _Sessions | None = None
        self._proxied: _Sessions | None = None
        self._guard: GuardedResolver | None = None  # checks the names of proxied endpoints
        self._checked: dict[str, float] = {}  # a proxied endpoint's host → until when its check holds
        self._used: weakref.WeakSet[Any] = weakref.WeakSet()  # connections that carried a request
        self._urls: dict[str, tuple[yarl.URL, bool]] = {}  # an endpoint parsed once, and whether it is proxied

    async def start(self) -> None:
        """Open the client sessions (again, if they were open)."""
        await self.close()
        self._direct = _Sessions(self._new_session(force_close=False), self._new_session(force_close=True))
        if self._proxy is not None:
            self._proxied = _Sessions(
                self._new_session(force_close=False, proxy=self._proxy),
                self._new_session(force_close=True, proxy=self._proxy),
            )
            if not self._allow_private:
                self._guard = GuardedResolver(self._resolver)

    def _new_session(self, *, force_close: bool, proxy: yarl.URL | None = None) -> aiohttp.ClientSession:
        resolver = self._resolver
        if proxy is not None:
            resolver = None  # the connector resolves only the proxy's name, which may be private
        elif not self._allow_private:
            resolver = GuardedResolver(self._resolver)
        connector = aiohttp.TCPConnector(
            limit=0,  # the dispatcher caps tries in flight, per endpoint and in all
            force_close=force_close,
            resolver=resolver,
            ttl_dns_cache=DNS_TTL_S,
            enable_cleanup_closed=False,
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=_limit(self._timeout_s),
            auto_decompress=False,
            skip_auto_headers=("Accept-Encoding",),
            headers={"User-Agent": USER_AGENT, "Content-Type": "application/json"},
            proxy=proxy,  # its user:password@, if any, is sent as Proxy-Authorization (also in CONNECT)
        )

    async def close(self) -> None:
        for sessions in (self._direct, self._proxied):
            if sessions is not None:
                for session in sessions:
                    await session.close()
        if self._guard is not None:
            await self._guard.close()
        self._direct = self._proxied = self._guard = None

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

    def _route(self, endpoint: str) -> tuple[yarl.URL, bool]:
        """The endpoint parsed once, not on every try, and whether it goes through the proxy."""
        route = self._urls.get(endpoint)
        if route is None:
            if len(self._urls) > 10_000:
                self._urls.clear()
            url = yarl.URL(endpoint)
            proxied = self._proxy is not None and not goes_direct(url.raw_host or "", self._no_proxy)
            route = self._urls[endpoint] = (url, proxied)
        return route

    def host(self, endpoint: str) -> str:
        """The endpoint's host (no credentials, port or path), for logs and metrics."""
        return self._route(endpoint)[0].host or ""

    def _answer(self, status: int, headers: Mapping[str, str]) -> Answer:
        """How an answer with ``status`` ends the try."""
        if status == 200 or (self._accept_any_2xx and 200 <= status < 300):
            return Answer(status, "")
        retry_after = parse_retry_after(headers.get("Retry-After"), time.time())
        if 300 <= status < 400:
            return Answer(status, f"HTTP {status} (redirect not followed)", retry_after, "redirect")
        kind = "http_4xx" if 400 <= status < 500 else "http_5xx" if 500 <= status < 600 else "http_other"
        return Answer(status, f"HTTP {status}", retry_after, kind)

    async def post(self, endpoint: str, body: bytes, headers: dict[str, str]) -> Answer:
        """One try: POST ``body`` and tell how it ended, in the contract's words. A request not yet written on a
        kept-alive connection the receiver (or the proxy) closed goes again on a new connection, in the same try."""
        assert self._direct is not None, "Egress.start() first"
        refused = self.refuse(endpoint)
        if refused is not None:
            return Answer(None, refused, outcome="blocked")
        url, proxied = self._route(endpoint)
        sessions = self._proxied if proxied else self._direct
        assert sessions is not None
        deadline = time.monotonic() + self._timeout_s
        limit = None  # the session's: the whole time limit
        try:
            if proxied and self._guard is not None:
                async with asyncio.timeout(self._timeout_s):
                    blocked = await self._check_target(self._guard, url)
                if blocked is not None:
                    return blocked
                limit = _limit(_left(deadline))
            try:
                return await self._send(sessions.pooled, url, _Body(body, self._used), headers, limit)
            except _NotSent:
                log.debug("%s closed a kept-alive connection; the request goes on a new one", url.host)
            return await self._send(sessions.fresh, url, _Body(body, None), headers, _limit(_left(deadline)))
        except _FAILURES as exc:
            error = self._failure(exc, proxied)
            kind = "timeout" if isinstance(exc, TimeoutError) else "connection"
            if error.startswith(BLOCKED):
                kind = "blocked"
            return Answer(None, error, outcome=kind)

    async def _check_target(self, guard: GuardedResolver, url: yarl.URL) -> Answer | None:
        """Before a proxied try: the endpoint's name resolved and checked here, as the guarded connector does for a
        direct one (the connector of a proxied one resolves only the proxy). An answer kept for ``DNS_TTL_S``;
        a literal address was checked by :meth:`refuse`."""
        host = url.raw_host or ""
        if literal_address(host) is not None:
            return None
        now = time.monotonic()
        if self._checked.get(host, 0.0) > now:
            return None
        try:
            await guard.resolve(host, url.port or 0)
        except BlockedAddress as exc:
            return Answer(None, str(exc), outcome="blocked")
        except OSError:
            return Answer(None, f"cannot resolve {host}", outcome="connection")
        if len(self._checked) > 10_000:
            self._checked.clear()
        self._checked[host] = now + DNS_TTL_S
        return None

    async def _send(
        self,
        session: aiohttp.ClientSession,
        url: yarl.URL,
        body: _Body,
        headers: dict[str, str],
        limit: aiohttp.ClientTimeout | None,
    ) -> Answer:
        """One POST; raise _NotSent when it failed on a kept-alive connection before the request was written."""
        options: dict[str, Any] = {} if limit is None else {"timeout": limit}
        try:
            async with session.post(url, data=body, headers=headers, allow_redirects=False, **options) as response:
                await _drain(response, ANSWER_READ_CAP)
                return self._answer(response.status, response.headers)
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            if body.reused and not body.written and not isinstance(exc, aiohttp.ClientConnectorError):
                raise _NotSent from exc
            raise

    def _failure(self, exc: BaseException, proxied: bool) -> str:
        """A failed POST in plain words."""
        if isinstance(exc, TimeoutError):
            return f"timed out after {self._timeout_s:.1f} s"
        if isinstance(exc, aiohttp.ClientProxyConnectionError):
            return f"cannot reach the egress proxy {self._proxy_at}: {_os_failure(exc.os_error)}"
        if proxied and isinstance(exc, aiohttp.ClientConnectorDNSError):  # only the proxy's name is resolved
            return f"cannot reach the egress proxy {self._proxy_at}: cannot resolve {exc.host}"
        if isinstance(exc, aiohttp.ClientConnectorError):
            return _connect_failure(exc)
        if isinstance(exc, aiohttp.ServerDisconnectedError):
            return "connection closed before an answer"
        if isinstance(exc, aiohttp.ClientOSError):
            return _os_failure(exc)
        if isinstance(exc, aiohttp.ClientHttpProxyError):
            return f"the egress proxy {self._proxy_at} answered HTTP {exc.status} to CONNECT"
        if isinstance(exc, aiohttp.ClientResponseError):
            # aiohttp's parser could not read the answer (it reports that as its own "400"); the receiver's
            # bytes are not repeated in the log
            return "malformed HTTP answer"
        if isinstance(exc, aiohttp.ClientError):
            return f"HTTP error: {exc.__class__.__name__}: {exc}"
        return f"cannot send: {exc}"


_FAILURES = (TimeoutError, aiohttp.ClientError, ValueError, asyncio.InvalidStateError)
"""What ends a POST as a failed try (anything else propagates)."""


def _left(deadline: float) -> float:
    """The seconds left of a try until ``deadline`` (monotonic); TimeoutError when none are."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


def _limit(seconds: float) -> aiohttp.ClientTimeout:
    """A time limit of exactly ``seconds``: aiohttp rounds deadlines of ceil_threshold seconds and more up to a
    whole second (5 s became up to 6 s)."""
    return aiohttp.ClientTimeout(total=seconds, ceil_threshold=float("inf"))


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
