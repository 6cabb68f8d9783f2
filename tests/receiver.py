"""A real HTTP receiver for webhooks: an aiohttp app on a free port that records every request.

Routes: ``/status/{code}`` answers that status; ``/ok/{name}`` answers 200 (names tell endpoints apart);
``/flaky/{n}`` answers 500 to the first n tries of each webhook id, then 200; ``/retry-after/{seconds}``
answers 429 with Retry-After the first time, then 200; ``/slow/{seconds}`` sleeps first; ``/redirect``
answers 302 to ``/status/200``; ``/reset`` drops the connection; ``/hang`` never answers; ``/big/{mb}`` answers
200 with a body of that many MiB; ``/garbage`` answers bytes that are not HTTP. (The sleeps of
``/slow`` and ``/hang`` are what those receivers are for, a slow or silent endpoint; no test waits on them.)
:meth:`Receiver.close_kept_alive` closes the idle connections, as a keep-alive running out does.
"""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    """The receiving end; ``url(path)`` builds an endpoint on it."""

    base: str = ""
    received: list[Received] = field(default_factory=list)
    tries: Counter[str] = field(default_factory=Counter)
    streamed: Counter[str] = field(default_factory=Counter)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _connections: set[asyncio.Transport] = field(default_factory=set)
    _runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def bodies(self, path: str | None = None) -> list[Any]:
        """Decoded bodies of the webhooks answered 200, optionally to one path."""
        return [r.json for r in self.received if path is None or r.path == path]

    async def wait_for(self, count: int, path: str | None = None) -> list[Any]:
        """Wait until ``count`` requests (to ``path``) have arrived (bound it with ``asyncio.timeout``)."""
        while len(self.bodies(path)) < count:
            self.arrived.clear()
            await self.arrived.wait()
        return self.bodies(path)

    def close_kept_alive(self) -> int:
        """Close every connection a request came on, at once, as a keep-alive running out does: the FIN goes
        now, and a request that arrives after it is never read. Return how many were closed."""
        closed = 0
        for transport in self._connections:
            if not transport.is_closing():
                transport.get_extra_info("socket").shutdown(socket.SHUT_WR)
                transport.abort()
                closed += 1
        self._connections.clear()
        return closed

    async def _record(self, request: web.Request) -> Received:
        body = await request.read()
        if request.transport is not None:
            self._connections.add(request.transport)
        got = Received(request.path, dict(request.headers), body)
        self.received.append(got)
        self.tries[f"{request.path} {request.headers.get('webhook-id', '')}"] += 1
        self.arrived.set()
        return got

    async def status(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.Response(status=int(request.match_info["code"]))

    async def ok(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.Response(status=200)

    async def flaky(self, request: web.Request) -> web.Response:
        got = await self._record(request)
        failures = int(request.match_info["n"])
        tries = sum(1 for r in self.received if r.path == got.path and r.body == got.body)
        return web.Response(status=500 if tries <= failures else 200)

    async def retry_after(self, request: web.Request) -> web.Response:
        got = await self._record(request)
        first = sum(1 for r in self.received if r.path == got.path and r.body == got.body) == 1
        if first:
            return web.Response(status=429, headers={"Retry-After": request.match_info["seconds"]})
        return web.Response(status=200)

    async def slow(self, request: web.Request) -> web.Response:
        await self._record(request)
        await asyncio.sleep(float(request.match_info["seconds"]))  # not synchronisation: a slow endpoint
        return web.Response(status=200)

    async def redirect(self, request: web.Request) -> web.Response:
        await self._record(request)
        raise web.HTTPFound(self.url("/status/200"))

    async def reset(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        assert request.transport is not None
        sock = request.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        request.transport.close()
        return web.Response(status=200)

    async def garbage(self, request: web.Request) -> web.StreamResponse:
        """An answer that is not HTTP."""
        await self._record(request)
        assert request.transport is not None
        request.transport.write(b"NOT HTTP AT ALL\r\n\r\n")
        request.transport.close()
        return web.Response(status=200)

    async def big(self, request: web.Request) -> web.StreamResponse:
        """200 with a body of ``mb`` MiB, streamed; how much of it went out is in ``streamed[path]``."""
        await self._record(request)
        answer = web.StreamResponse(status=200)
        await answer.prepare(request)
        chunk, left = b"x" * 65536, int(request.match_info["mb"]) * 16
        self.streamed[request.path] = 0
        try:
            for _ in range(left):
                await answer.write(chunk)
                self.streamed[request.path] += len(chunk)
        except (ConnectionError, RuntimeError):  # the client stopped reading and closed
            return answer
        await answer.write_eof()
        return answer

    async def hang(self, request: web.Request) -> web.Response:
        await self._record(request)
        await asyncio.sleep(3600)  # not synchronisation: an endpoint that never answers
        return web.Response(status=200)

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/status/{code}", self.status)
        app.router.add_post("/ok/{name}", self.ok)
        app.router.add_post("/flaky/{n}", self.flaky)
        app.router.add_post("/retry-after/{seconds}", self.retry_after)
        app.router.add_post("/slow/{seconds}", self.slow)
        app.router.add_post("/redirect", self.redirect)
        app.router.add_post("/reset", self.reset)
        app.router.add_post("/hang", self.hang)
        app.router.add_post("/big/{mb}", self.big)
        app.router.add_post("/garbage", self.garbage)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        assert site._server is not None
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.base = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class ThreadedReceiver:
    """A :class:`Receiver` on its own event loop in a thread, for synchronous tests."""

    def __init__(self) -> None:
        import threading

        self.receiver = Receiver()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.receiver.start(), self._loop).result(10)

    def url(self, path: str) -> str:
        return self.receiver.url(path)

    @property
    def received(self) -> list[Received]:
        return list(self.receiver.received)

    def wait_for(self, count: int, path: str | None = None, timeout: float = 20.0) -> list[Any]:
        """Wait until ``count`` requests (to ``path``) have arrived, for at most ``timeout`` seconds."""

        async def bounded() -> list[Any]:
            async with asyncio.timeout(timeout):
                return await self.receiver.wait_for(count, path)

        return asyncio.run_coroutine_threadsafe(bounded(), self._loop).result()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.receiver.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
