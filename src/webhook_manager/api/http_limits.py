"""Limits on the HTTP connections in front of the API (docs/settings.md): the size and the time of a request's
line and headers (its head), and the number of open connections. A connection past a limit is answered 431,
408 or 503, closed, and counted.

uvicorn's httptools protocol, with a byte count and a timer around each head, and a cap on connections that
makes room by closing the one that has waited longest with no request in flight (an idle socket, a head
still arriving, a kept-alive connection between requests), so idle sockets cannot lock out a real caller.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, ClassVar

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from webhook_manager.settings import Settings

log = logging.getLogger("webhook_manager.api")

LOG_EVERY_S = 60.0
FILES_BESIDE = 100  # open files beside connections and tries: the store, the log, the listening socket, capture
REASONS = {431: "request head too large", 408: "request head too slow", 503: "too many connections"}


class ConnectionLimits:
    """One server's limits, and how many connections it answered with each status of ``REASONS`` and closed
    (``closed``); a warning the first time for each status, then at most once a minute."""

    def __init__(self, settings: Settings, now: Callable[[], float] = time.monotonic) -> None:
        self.max_header_bytes = settings.max_header_bytes
        self.header_read_timeout_s = settings.header_read_timeout_s
        self.max_connections = settings.max_connections
        self.closed: Counter[int] = Counter()
        self.waiting: dict[LimitedHttpToolsProtocol, None] = {}  # open with no request in flight, oldest first
        self._now = now
        self._logged_at: dict[int, float] = {}

    def count(self, status: int) -> None:
        """One more connection answered ``status`` and closed."""
        self.closed[status] += 1
        now = self._now()
        if status not in self._logged_at or now - self._logged_at[status] >= LOG_EVERY_S:
            self._logged_at[status] = now
            log.warning(
                "answered %d and closed a connection: %s (%d so far; said at most once a minute)",
                status,
                REASONS[status],
                self.closed[status],
            )

    def protocol(self) -> type[LimitedHttpToolsProtocol]:
        """The protocol class for uvicorn's ``http`` setting, bound to these limits."""
        return type("LimitedHttpToolsProtocol", (LimitedHttpToolsProtocol,), {"limits": self})


def raise_open_files_limit(settings: Settings) -> None:
    """Raise this process's soft limit on open files to what ``max_connections`` and ``max_in_flight`` need,
    as far as the hard limit allows (a warning when it does not), so the cap, not the kernel, refuses."""
    needed = settings.max_connections + settings.max_in_flight + FILES_BESIDE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
    if raised < needed:
        log.warning(
            "the open-file limit is %d, under the %d that max_connections and max_in_flight need: lower them,"
            " or raise the limit (ulimit -n, LimitNOFILE)",
            raised,
            needed,
        )


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol within :class:`ConnectionLimits`."""

    limits: ClassVar[ConnectionLimits]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading_head = True  # the bytes that come next are a request's head
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head_timer()
        self.limits.waiting[self] = None
        if len(self.connections) > self.limits.max_connections:
            next(iter(self.limits.waiting)).close_with(503)  # the longest waiting: this one when no other waits

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._stop_head_timer()
        self.limits.waiting.pop(self, None)

    def data_received(self, data: bytes) -> None:
        room = self.limits.max_header_bytes - self._head_bytes
        if not self._reading_head or len(data) <= room:
            self._head_bytes += len(data) if self._reading_head else 0
            super().data_received(data)
            return
        self._head_bytes += room
        super().data_received(data[:room])
        if self._reading_head and self._head_bytes >= self.limits.max_header_bytes:  # the same head, not done
            self.close_with(431)
        elif not self.transport.is_closing():
            self.data_received(data[room:])

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_timer is None:
            self._start_head_timer()

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._stop_head_timer()
        self.limits.waiting.pop(self, None)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_head, self._head_bytes = True, 0

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.cycle.response_complete:  # no pipelined request goes on
            self.limits.waiting[self] = None

    def close_with(self, status: int) -> None:
        """Answer ``status`` and close, whatever has arrived of a request."""
        self._stop_head_timer()
        self.limits.waiting.pop(self, None)
        if self.transport.is_closing():
            return
        self.limits.count(status)
        body = orjson.dumps({"error": REASONS[status]})
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head.append(b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body))
        self.transport.write(b"".join(head) + body)
        self.transport.close()

    def _start_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.limits.header_read_timeout_s, self._head_too_slow)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            self._start_head_timer()  # a pipelined head waits behind an answer still being written
        else:
            self.close_with(408)
