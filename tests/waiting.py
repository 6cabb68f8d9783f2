"""Waiting for a condition, never for a length of time: the condition is checked again and again, with a
short pause between checks, until it holds or a deadline passes (then the test fails saying what it waited
for). Use it where nothing can tell the test that the condition now holds (another process, another
database, a thread); where an ``asyncio.Event`` exists (``Receiver.wait_for``), wait on that instead."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

PAUSE_S = 0.02


def _say(what: str | Callable[[], str]) -> str:
    return what if isinstance(what, str) else what()


def wait_until(
    check: Callable[[], T | None],
    timeout: float = 20.0,
    *,
    what: str | Callable[[], str] = "",
    pause: float = PAUSE_S,
) -> T:
    """Call ``check`` until it returns something true, and return that; for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {_say(what) or check}")
        time.sleep(pause)  # a pause between checks, bounded by the deadline above
    return result


async def wait_until_async(
    check: Callable[[], object], *, what: str | Callable[[], str] = "", pause: float = PAUSE_S
) -> None:
    """:func:`wait_until` on an event loop, which runs on between checks; ``check`` may be a coroutine
    function. The caller bounds the wait with ``asyncio.timeout`` (the deadline is the caller's, as ruff's
    ASYNC109 asks); the timeout's cause then notes what was waited for."""
    try:
        while True:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
            await asyncio.sleep(pause)  # a pause between checks; the caller's timeout bounds them
    except asyncio.CancelledError as cancelled:
        cancelled.add_note(f"cancelled while waiting for {_say(what) or check}")
        raise
