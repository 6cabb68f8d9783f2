"""The bounds of login work (login_guard.py): one running check per address, a short queue, pairs in turn."""

from __future__ import annotations

import asyncio
import functools
import threading

import pytest

from tests.waiting import wait_until_async
from webhook_manager.login_guard import LoginGuard, TooManyLogins


async def test_an_address_runs_one_check_queues_a_few_and_is_refused_beyond() -> None:
    guard = LoginGuard(workers=2, waiting_per_address=3)
    release = threading.Event()
    running: list[str] = []

    def work(name: str) -> str:
        running.append(name)
        release.wait(10)
        return name

    try:
        mine = [asyncio.create_task(guard.check("10.0.0.1", functools.partial(work, f"a{i}"))) for i in range(4)]
        await wait_until_async(lambda: running == ["a0"], what="the first check of the address to run")
        with pytest.raises(TooManyLogins):  # one running and three waiting: the fifth is refused at once
            await guard.check("10.0.0.1", lambda: "refused")
        # Another address gets the pool's other thread meanwhile.
        other = asyncio.create_task(guard.check("10.0.0.2", functools.partial(work, "b")))
        await wait_until_async(lambda: running == ["a0", "b"], what="the other address's check to run")
        release.set()
        assert await asyncio.gather(*mine, other) == ["a0", "a1", "a2", "a3", "b"]
        assert running == ["a0", "b", "a1", "a2", "a3"]  # the address's checks ran one after the other
        assert await guard.check("10.0.0.1", lambda: "again") == "again"  # its queue is free once done
    finally:
        release.set()
        guard.close()


async def test_the_logins_of_one_pair_take_turns() -> None:
    guard = LoginGuard()
    inside: list[int] = []
    overlaps: list[int] = []

    async def login(i: int) -> None:
        async with guard.pair("100", "alice"):
            if inside:
                overlaps.append(i)
            inside.append(i)
            await asyncio.sleep(0)  # let the others run if they could
            inside.remove(i)

    async def other_pair() -> bool:
        async with guard.pair("100", "bob"):
            return bool(inside)  # may run while alice's pair is held

    try:
        async with guard.pair("100", "alice"):
            inside.append(-1)
            waiting = [asyncio.create_task(login(i)) for i in range(5)]
            assert await other_pair()
            inside.remove(-1)
        await asyncio.gather(*waiting)
        assert overlaps == []
    finally:
        guard.close()
