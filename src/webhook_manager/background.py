"""What the background loops (the pipeline's, capture's) share: waiting for a wake-up or a timeout, and
stopping a set of tasks, in ways a cancel always ends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable


async def wait_or_timeout(event: asyncio.Event, timeout_s: float) -> None:
    """Return when ``event`` is set or after ``timeout_s``.

    ``asyncio.wait_for`` on Python 3.11 can swallow a cancel that arrives as the event fires (CPython
    gh-86296), which left a loop running after shutdown; ``asyncio.timeout`` does not.
    """
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        pass


async def stop_all(tasks: Iterable[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and wait until each has ended (its ``finally`` blocks run)."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
