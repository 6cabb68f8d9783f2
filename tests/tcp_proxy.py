"""A TCP forwarder on 127.0.0.1 for fault tests: a process is pointed at the proxy's port instead of a server's,
so a test can take away that one process's path to the server while the server and everyone else go on.

:meth:`TcpProxy.cut` resets every connection and every new one (the listening socket stays, so the port is
never lost to another process meanwhile: connecting then fails at once with a reset); :meth:`TcpProxy.restore`
forwards again. :meth:`TcpProxy.freeze` is the other kind of outage, packets dropped on the way: nothing is
forwarded and nothing fails, every call just waits; :meth:`TcpProxy.thaw` lets what waited through. The proxy
runs on an event loop of its own, in a thread, so synchronous tests can use it."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

T = TypeVar("T")

CHUNK = 65536


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close at once with a TCP reset, as a connection cut off does, not with an orderly FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class TcpProxy:
    """Forwards connections on ``127.0.0.1:port`` to ``host:port`` of the target; see the module's docstring."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._open = True
        self._connections: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()  # cleared while frozen
        self._flowing.set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._thread.start()
        self.port = self._call(self._listen())

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _listen(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._open:
            _reset(writer)
            return
        await self._flowing.wait()  # while frozen, a new connection is accepted and hears nothing
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            _reset(writer)  # the server refused: so does the proxy
            return
        pair = {writer, up_writer}
        self._connections |= pair
        pipes = {
            asyncio.ensure_future(self._pipe(reader, up_writer)),
            asyncio.ensure_future(self._pipe(up_reader, writer)),
        }
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)  # one side closed: close the other
        finally:
            for pipe in pipes:
                pipe.cancel()
            for end in pair:
                self._connections.discard(end)
                end.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with suppress(ConnectionError, OSError):
            while data := await reader.read(CHUNK):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()

    async def _cut(self) -> int:
        self._open = False
        ends = list(self._connections)
        for end in ends:
            _reset(end)
        self._connections.clear()
        return len(ends) // 2

    def cut(self) -> int:
        """Reset every connection, and from now on every new one; return how many were open."""
        return self._call(self._cut())

    def freeze(self) -> None:
        """Forward nothing more, either way, and keep every connection open, as when packets are dropped on
        the way (calls hang rather than fail, up to the client's own time limits)."""

        async def freeze() -> None:
            self._flowing.clear()

        self._call(freeze())

    def thaw(self) -> None:
        """Forward again what waited, and what comes."""

        async def thaw() -> None:
            self._flowing.set()

        self._call(thaw())

    def restore(self) -> None:
        """Forward new connections again."""

        async def restore() -> None:
            self._open = True

        self._call(restore())

    def close(self) -> None:
        """Stop listening, reset every connection and stop the loop."""

        async def close() -> None:
            assert self._server is not None
            self._server.close()
            self._flowing.set()
            await self._cut()
            await self._server.wait_closed()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        self._call(close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@contextmanager
def tcp_proxy(target_host: str, target_port: int) -> Iterator[TcpProxy]:
    """A :class:`TcpProxy` to the target for the block; closed on leaving it, also when the test fails."""
    proxy = TcpProxy(target_host, target_port)
    try:
        yield proxy
    finally:
        proxy.close()
