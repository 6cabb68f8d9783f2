"""Waiting for a wake-up or a timeout, whichever comes first, in a way a cancel always ends."""

from __future__ import annotations

import asyncio


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
