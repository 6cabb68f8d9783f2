"""Bounds on every wait: the one error a bench stops on, the global deadline, and stall detection."""

from __future__ import annotations

import time


class BenchError(Exception):
    """The bench cannot go on; the message is one line saying why."""


class Deadline:
    """The global time limit (``--timeout``); every loop asks it before going on."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def check(self, doing: str) -> None:
        if self.remaining() <= 0:
            raise BenchError(f"the global deadline (--timeout {self.seconds:g} s) passed while {doing}")

    def bounded(self, limit: float) -> float:
        """A time limit for one step: at most ``limit`` seconds, never much past the deadline (at least 1 s)."""
        return max(1.0, min(limit, self.remaining()))


class Watch:
    """The bookkeeping of a wait for a count to grow: has it stood still for over ``stall`` seconds (``--stall``),
    and is a progress line due (every ``report_every`` seconds)."""

    def __init__(self, stall: float, seen: int = -1, report_every: float = 10.0) -> None:
        self.stall = stall
        self.seen = seen
        self.last_change = time.monotonic()
        self.report_every = report_every
        self.next_report = self.last_change + report_every

    def stalled(self, count: int, now: float) -> bool:
        """Note ``count`` as seen at ``now``; True when it has not changed for longer than the stall limit."""
        if count != self.seen:
            self.seen, self.last_change = count, now
            return False
        return now - self.last_change > self.stall

    def report_due(self, now: float) -> bool:
        if now < self.next_report:
            return False
        self.next_report = now + self.report_every
        return True
