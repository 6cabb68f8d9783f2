"""The clock seam: what the API and the pipeline ask for the time, so a test can let time pass without
waiting for it. Times are integer milliseconds since the Unix epoch (UTC), as the store keeps them."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Where "now" comes from."""

    def now_ms(self) -> int:
        """Milliseconds since the epoch."""
        ...


class SystemClock:
    """The wall clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


SYSTEM_CLOCK: Clock = SystemClock()
