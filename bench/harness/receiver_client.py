"""The benches' side of the webhook receiver (bench/receiver.py): start it in a process of its own, and read its
counts through its control endpoints (``GET /stats``, ``POST /reset``; ``GET /rows`` is
:func:`bench.receiver.get_rows`)."""

from __future__ import annotations

from multiprocessing.process import BaseProcess

import aiohttp
import orjson

from bench import receiver
from bench.harness.limits import BenchError
from bench.harness.service import HOST


def start_receiver(rows: bool = False, timeout: float = 10.0) -> tuple[BaseProcess, int]:
    """The receiver in a process of its own (it ends with the bench; stop it earlier with ``receiver.stop``),
    with ``rows`` noting the receipt time of every rowId; returns the process and its port."""
    try:
        return receiver.start(host=HOST, timeout=timeout, rows=rows)
    except (RuntimeError, EOFError) as exc:
        raise BenchError(f"the receiver did not start listening within {timeout:g} s") from exc


class ReceiverClient:
    """The receiver's control endpoints, through the bench's aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, port: int, pid: int) -> None:
        self.session = session
        self.port = port
        self.pid = pid
        self.base = f"http://{HOST}:{port}"
        self.endpoint = f"{self.base}/hook"

    async def _get(self, method: str, path: str) -> bytes:
        try:
            async with self.session.request(
                method, f"{self.base}{path}", timeout=aiohttp.ClientTimeout(total=10)
            ) as response:
                return await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BenchError(f"the receiver did not answer {method} {path}: {type(exc).__name__} {exc}") from exc

    async def stats(self) -> receiver.Stats:
        stats: receiver.Stats = orjson.loads(await self._get("GET", "/stats"))
        return stats

    async def reset(self, *, latency: bool = False) -> None:
        await self._get("POST", "/reset" + ("?latency=1" if latency else ""))
