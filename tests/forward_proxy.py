"""A small HTTP forward proxy on 127.0.0.1 for egress tests, recording each request it was asked to proxy.

Absolute-URI requests (``POST http://host:port/path HTTP/1.1``) are forwarded with an aiohttp client session and
their answers sent back, on a kept-alive connection; ``CONNECT host:port`` opens a tunnel (a 502 when the target
refuses) and pipes the two sockets. ``upstream`` sends every request there instead of to its host, as a proxy that
resolves names in its own way does, so tests can name public hosts and still reach a local receiver.
:meth:`ForwardProxy.close_kept_alive` closes the idle client connections, as a proxy's keep-alive running out does.
"""

from __future__ import annotations

import asyncio
import socket
from contextlib import suppress
from dataclasses import dataclass

import aiohttp
import yarl
from multidict import CIMultiDict

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authorization", "proxy-connection", "te", "trailer", "upgrade"}
HOP_BY_HOP |= {"transfer-encoding", "content-length", "host"}


@dataclass(frozen=True)
class Proxied:
    """One request the proxy was asked for: its method, its target (an absolute URI, or host:port to CONNECT)."""

    method: str
    target: str
    headers: CIMultiDict[str]


class ForwardProxy:
    def __init__(self, upstream: str | None = None) -> None:
        self.upstream = upstream
        self.requests: list[Proxied] = []
        self.connections = 0  # every connection accepted, with a request or not
        self.port = 0
        self._server: asyncio.Server | None = None
        self._session: aiohttp.ClientSession | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._idle: set[asyncio.StreamWriter] = set()  # served a request, waiting for the next

    def url(self, user_info: str = "") -> str:
        return f"http://{user_info + '@' if user_info else ''}127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=False, skip_auto_headers=("Accept", "Accept-Encoding"))
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        assert self._server is not None
        assert self._session is not None
        self._server.close()
        for writer in list(self._open):
            writer.transport.abort()
        for task in self._handlers:
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()
        await self._session.close()

    def close_kept_alive(self) -> int:
        """Close every idle client connection at once (the FIN goes now); return how many were closed."""
        for writer in self._idle:
            writer.get_extra_info("socket").shutdown(socket.SHUT_WR)
            writer.transport.abort()
        closed, self._idle = len(self._idle), set()
        return closed

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._open.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            pass  # stopped; ending normally, since asyncio's stream server asks a handler for its exception
        finally:
            self._idle.discard(writer)
            self._open.discard(writer)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Requests on one client connection, one after another."""
        while not writer.is_closing():
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            self._idle.discard(writer)
            line, *rest = head.decode("latin-1").rstrip("\r\n").split("\r\n")
            method, target, _ = line.split(" ", 2)
            headers: CIMultiDict[str] = CIMultiDict()
            for field in rest:
                name, _, value = field.partition(": ")
                headers.add(name, value)
            self.requests.append(Proxied(method, target, headers))
            if method == "CONNECT":
                await self._tunnel(target, reader, writer)
                return
            body = await reader.readexactly(int(headers.get("Content-Length", "0")))
            writer.write(await self._forward(method, target, headers, body))
            await writer.drain()
            if headers.get("Connection", "").lower() == "close":
                return
            self._idle.add(writer)

    async def _forward(self, method: str, target: str, headers: CIMultiDict[str], body: bytes) -> bytes:
        assert self._session is not None
        url = yarl.URL(target)
        if self.upstream is not None:
            url = yarl.URL(self.upstream + url.raw_path_qs, encoded=True)
        sent = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}
        got: CIMultiDict[str] = CIMultiDict()
        try:
            async with self._session.request(method, url, headers=sent, data=body, allow_redirects=False) as answer:
                status, reason, content = answer.status, answer.reason, await answer.read()
                got.extend(answer.headers)
        except aiohttp.ClientError:
            status, reason, content = 502, "Bad Gateway", b""
        lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(content)}"]
        lines += [f"{k}: {v}" for k, v in got.items() if k.lower() not in HOP_BY_HOP]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + content

    async def _tunnel(self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, _, port = target.rpartition(":")
        if self.upstream is not None:
            up = yarl.URL(self.upstream)
            host, port = up.host or "", str(up.port)
        try:
            up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
        except OSError:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        pipes = {asyncio.ensure_future(_pipe(reader, up_writer)), asyncio.ensure_future(_pipe(up_reader, writer))}
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)  # one side closed: close the other
        finally:
            for pipe in pipes:
                pipe.cancel()
            up_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
