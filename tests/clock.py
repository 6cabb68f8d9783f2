"""A clock for tests that lets time pass without waiting for it (the seam is
:class:`webhook_manager.domain.clock.Clock`)."""

from __future__ import annotations

import threading

from webhook_manager.domain.clock import SYSTEM_CLOCK


class FakeClock:
    """Stands still until :meth:`advance` moves it. It starts at the real now, and tests move it by seconds or
    minutes, not days: receivers check the ``webhook-timestamp`` header against their own clock (the
    ``standardwebhooks`` library allows five minutes either way), and other times in the store (events
    recorded by helpers, accounts) come from the real clock."""

    def __init__(self, start_ms: int | None = None) -> None:
        self._now_ms = SYSTEM_CLOCK.now_ms() if start_ms is None else start_ms
        self._lock = threading.Lock()  # the served API reads it on a thread of its own

    def now_ms(self) -> int:
        with self._lock:
            return self._now_ms

    def advance(self, ms: int) -> None:
        """Let ``ms`` milliseconds pass."""
        assert ms >= 0, "time does not go backwards"
        with self._lock:
            self._now_ms += ms
