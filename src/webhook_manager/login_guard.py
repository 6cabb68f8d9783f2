"""How much password work logins may cause (docs/api.md, "Login limits").

Checking a password costs an argon2 hash (~0.1 s of a core, 64 MiB), so a stranger who sends logins fast
could keep every core busy and make real logins wait. :class:`LoginGuard` bounds that work:

- argon2 runs on a small pool of its own threads (never the event loop, never the default pool);
- one caller address has at most one check running, and a few more waiting; beyond that its logins are
  refused at once (Erply's 1002), so one address cannot take more than one thread of the pool;
- one (client, username) pair is checked one login at a time in a process, so its block is decided on its
  counted failures only: parallel tries cannot slip past the limit, and parallel *correct* logins never
  block each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")
K = TypeVar("K")

WORKERS = max(2, min(4, os.cpu_count() or 2))
"""argon2 threads of a process."""
WAITING_PER_ADDRESS = 8
"""Logins of one address that may wait for its running one; more are refused at once."""


class TooManyLogins(Exception):
    """An address has more logins running and waiting than :data:`WAITING_PER_ADDRESS` allows."""


@dataclass
class _Queue:
    """The logins of one key (an address or a pair): one runs, the others wait their turn."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    members: int = 0


class LoginGuard:
    """Bounds and orders the password work of one process's logins."""

    def __init__(self, workers: int = WORKERS, waiting_per_address: int = WAITING_PER_ADDRESS) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2")
        self._waiting_per_address = waiting_per_address
        self._addresses: dict[str, _Queue] = {}
        self._pairs: dict[tuple[str, str], _Queue] = {}

    @contextlib.asynccontextmanager
    async def pair(self, client_code: str, username: str) -> AsyncIterator[None]:
        """Hold the turn of that (client, username) pair: its logins run one after the other."""
        async with _turn(self._pairs, (client_code, username)):
            yield

    async def check(self, address: str, work: Callable[[], T]) -> T:
        """Run one password check for a caller at ``address`` on the pool, in that address's turn; raise
        :class:`TooManyLogins` when the address already has its fill of logins running and waiting."""
        queue = self._addresses.get(address)
        if queue is not None and queue.members > self._waiting_per_address:
            raise TooManyLogins(address)
        async with _turn(self._addresses, address):
            return await asyncio.get_running_loop().run_in_executor(self._pool, work)

    def close(self) -> None:
        """Stop the pool's threads once their checks are done."""
        self._pool.shutdown(wait=False, cancel_futures=True)


@contextlib.asynccontextmanager
async def _turn(queues: dict[K, _Queue], key: K) -> AsyncIterator[None]:
    queue = queues.setdefault(key, _Queue())
    queue.members += 1
    try:
        async with queue.lock:
            yield
    finally:
        queue.members -= 1
        if queue.members == 0:
            del queues[key]
