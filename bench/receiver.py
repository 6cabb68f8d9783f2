"""A fast webhook receiver for the benchmarks: a bare HTTP/1.1 server on uvloop that answers every POST with 200.

It parses just enough HTTP/1.1 (request line, headers, a Content-Length or chunked body, keep-alive, several
requests pipelined in one read), counts webhooks and the events in them (the body's ``eventCount``, found with a
regex, so the body is never decoded as JSON) and, when latency recording is on, reads every ``"t": <unix time>``
in the body (the bench sets each item's ``data`` to ``{"t": time.time()}`` when it posts the event) and records
``time.time()`` at receipt minus ``t``.

Control endpoints on the same server (anything else POSTed counts as a webhook):

- ``GET /stats``: counts, first/last receipt times (Unix seconds), duplicate webhook ids and latency percentiles
  (milliseconds), as JSON.
- ``POST /reset`` (or ``GET /reset``), optional query ``latency=1``: clears every count; records latencies from now
  on only with ``latency=1``.
- ``GET /rows``, on a receiver started with ``rows=True`` (the capture bench's): ``{"ids": [...], "times": [...]}``,
  every rowId received while latency recording is on and ``time.time()`` at its receipt, in receipt order.

Run it alone with ``python -m bench.receiver --port 9000``, or start it from Python with :func:`start`, which
runs it in a separate process and returns that process and the port it listens on. The benches reach it through
:mod:`bench.harness.receiver_client`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import math
import multiprocessing
import os
import re
import socket
import sys
import time
from array import array
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, TypedDict, cast

import orjson
import uvloop

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
OK_CLOSE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
MAX_HEAD = 64 * 1024

_EVENT_COUNT = re.compile(rb'"eventCount"\s*:\s*"?(\d+)')
_WEBHOOK_ID = re.compile(rb'"id"\s*:\s*"([^"]*)"')
_SENT_AT = re.compile(rb'"t"\s*:\s*(-?[0-9][0-9.eE+-]*)')


class LatencyStats(TypedDict):
    """Receipt latency of events, in milliseconds (``None`` without samples)."""

    count: int
    mean: float | None
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None


class Stats(TypedDict):
    """What ``GET /stats`` answers."""

    webhooks: int
    events: int
    bytes: int
    other_requests: int
    first: float | None
    last: float | None
    unique_ids: int
    duplicates: int
    connections: int
    connections_total: int
    latency_on: bool
    latency: LatencyStats


def percentile(sorted_values: list[float], q: float) -> float | None:
    """The q-th percentile (0–100) of already sorted values, by the nearest-rank method."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class Counters:
    """Everything the receiver counts; one per server process."""

    def __init__(self) -> None:
        self.latency_on = False
        self.connections = 0
        self.connections_total = 0
        self.reset(latency=False)

    def reset(self, *, latency: bool) -> None:
        self.webhooks = 0
        self.events = 0
        self.bytes = 0
        self.other_requests = 0
        self.first: float | None = None
        self.last: float | None = None
        self.ids: set[bytes] = set()
        self.duplicates = 0
        self.latency_on = latency
        self.latencies = array("d")

    def webhook(self, body: bytes, now: float) -> None:
        self.webhooks += 1
        self.bytes += len(body)
        match = _EVENT_COUNT.search(body)
        if match is not None:
            self.events += int(match.group(1))
        match = _WEBHOOK_ID.search(body)
        if match is not None:
            webhook_id = match.group(1)
            if webhook_id in self.ids:
                self.duplicates += 1
            else:
                self.ids.add(webhook_id)
        if self.first is None:
            self.first = now
        self.last = now
        if self.latency_on:
            append = self.latencies.append
            for sent in _SENT_AT.findall(body):
                append(now - float(sent))

    def snapshot(self) -> Stats:
        values = sorted(self.latencies)
        count = len(values)
        ms: list[float] = [v * 1000.0 for v in values]
        return Stats(
            webhooks=self.webhooks,
            events=self.events,
            bytes=self.bytes,
            other_requests=self.other_requests,
            first=self.first,
            last=self.last,
            unique_ids=len(self.ids),
            duplicates=self.duplicates,
            connections=self.connections,
            connections_total=self.connections_total,
            latency_on=self.latency_on,
            latency=LatencyStats(
                count=count,
                mean=(sum(ms) / count) if count else None,
                p50=percentile(ms, 50),
                p90=percentile(ms, 90),
                p99=percentile(ms, 99),
                max=ms[-1] if ms else None,
            ),
        )


_ROW_ID = re.compile(rb'"rowId"\s*:\s*(\d+)')


class RowCounters(Counters):
    """The counters, plus the receipt time (``time.time()``) of every rowId while latency is on."""

    def reset(self, *, latency: bool) -> None:
        super().reset(latency=latency)
        self.row_ids = array("q")
        self.row_times = array("d")

    def webhook(self, body: bytes, now: float) -> None:
        super().webhook(body, now)
        if self.latency_on:
            for row_id in _ROW_ID.findall(body):
                self.row_ids.append(int(row_id))
                self.row_times.append(now)


def _chunked_body(data: bytes, start: int) -> tuple[bytes, int] | None:
    """Decode a chunked body that starts at ``start``: (body, end offset), or None while incomplete."""
    parts: list[bytes] = []
    pos = start
    while True:
        line_end = data.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(data[pos:line_end].split(b";", 1)[0], 16)
        pos = line_end + 2
        if size == 0:
            # Trailers (usually none) end with an empty line.
            end = data.find(b"\r\n\r\n", pos - 2)
            if end < 0:
                return None
            return b"".join(parts), end + 4
        if pos + size + 2 > len(data):
            return None
        parts.append(data[pos : pos + size])
        pos += size + 2


def _json_answer(body: bytes, connection: bytes) -> bytes:
    """A 200 answer with a JSON body (``connection``: a ``Connection: close`` header line, or nothing)."""
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s" % (
        len(body),
        connection,
        body,
    )


class ReceiverProtocol(asyncio.Protocol):
    """One HTTP/1.1 connection."""

    __slots__ = ("_buf", "_counters", "_need", "_transport")

    def __init__(self, counters: Counters) -> None:
        self._counters = counters
        self._buf = bytearray()
        self._need = 0
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._counters.connections += 1
        self._counters.connections_total += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self._counters.connections -= 1
        self._transport = None

    # One function on purpose: it runs for every read of every connection, and the benches' ceiling figures include
    # the receiver's cost, so it stays one loop without calls per request.
    def data_received(self, data: bytes) -> None:  # noqa: C901
        if self._buf:
            self._buf += data
            if len(self._buf) < self._need:
                return
            data = bytes(self._buf)
            self._buf.clear()
        self._need = 0
        transport = self._transport
        if transport is None:
            return
        now = time.time()
        counters = self._counters
        out: list[bytes] = []
        close = False
        pos = 0
        size = len(data)
        while pos < size:
            head_end = data.find(b"\r\n\r\n", pos)
            if head_end < 0:
                if size - pos > MAX_HEAD:
                    out.append(BAD_REQUEST)
                    close = True
                    pos = size
                break
            head = data[pos:head_end]
            lower = head.lower()
            body_start = head_end + 4
            try:
                at = lower.find(b"\r\ncontent-length:")
                if at >= 0:
                    value_end = lower.find(b"\r\n", at + 17)
                    length = int(lower[at + 17 : value_end if value_end >= 0 else len(lower)])
                    if body_start + length > size:
                        self._need = body_start + length - pos
                        break
                    body = data[body_start : body_start + length]
                    next_pos = body_start + length
                elif b"\r\ntransfer-encoding:" in lower and b"chunked" in lower:
                    decoded = _chunked_body(data, body_start)
                    if decoded is None:
                        break
                    body, next_pos = decoded
                else:
                    body = b""
                    next_pos = body_start
            except ValueError:
                out.append(BAD_REQUEST)
                close = True
                pos = size
                break
            pos = next_pos
            line_end = lower.find(b"\r\n")
            http10 = (lower[:line_end] if line_end >= 0 else lower).endswith(b"http/1.0")
            keep_alive = b"\r\nconnection: keep-alive" in lower if http10 else b"\r\nconnection: close" not in lower
            if head.startswith(b"POST ") and not head.startswith(b"POST /reset"):
                counters.webhook(body, now)
                out.append(OK if keep_alive else OK_CLOSE)
            else:
                out.append(self._control(head, keep_alive))
            if not keep_alive:
                close = True
                pos = size
                break
        if pos < size:
            self._buf += data[pos:]
        if out:
            transport.write(out[0] if len(out) == 1 else b"".join(out))
        if close:
            transport.close()

    def _control(self, head: bytes, keep_alive: bool) -> bytes:
        counters = self._counters
        line = head.split(b"\r\n", 1)[0]
        parts = line.split(b" ")
        target = parts[1] if len(parts) > 1 else b"/"
        path, _, query = target.partition(b"?")
        connection = b"" if keep_alive else b"Connection: close\r\n"
        if path == b"/stats":
            return _json_answer(orjson.dumps(counters.snapshot()), connection)
        if path == b"/rows" and isinstance(counters, RowCounters):
            rows = {"ids": counters.row_ids.tolist(), "times": counters.row_times.tolist()}
            return _json_answer(orjson.dumps(rows), connection)
        if path == b"/reset":
            counters.reset(latency=b"latency=1" in query)
            return b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n%s\r\n" % connection
        counters.other_requests += 1
        return b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n%s\r\n" % connection


async def serve(
    host: str, port: int, conn: Connection | None = None, parent_pid: int | None = None, rows: bool = False
) -> None:
    """Listen on host:port (0: any free port) until cancelled or, with ``parent_pid``, until that parent is gone;
    with ``rows``, noting the receipt time of every rowId (``GET /rows``)."""
    loop = asyncio.get_running_loop()
    counters = RowCounters() if rows else Counters()
    server = await loop.create_server(lambda: ReceiverProtocol(counters), host, port, reuse_address=True, backlog=4096)
    bound = server.sockets[0].getsockname()[1]
    if conn is not None:
        conn.send(bound)
        conn.close()
    else:
        print(f"receiver listening on http://{host}:{bound}/ (GET /stats, POST /reset?latency=1)", flush=True)
    async with server:
        while True:
            await asyncio.sleep(0.5)
            if parent_pid is not None and os.getppid() != parent_pid:
                return


def _child(host: str, port: int, conn: Connection, parent_pid: int, rows: bool) -> None:
    uvloop.run(serve(host, port, conn, parent_pid, rows))


def start(port: int = 0, host: str = "127.0.0.1", timeout: float = 10.0, rows: bool = False) -> tuple[BaseProcess, int]:
    """Run the receiver in a new process (with ``rows``, noting rowId receipt times); returns that process and the
    port it listens on.

    The process ends by itself when its parent does; stop it earlier with :func:`stop`.
    """
    context = multiprocessing.get_context("spawn")
    parent_end, child_end = context.Pipe(duplex=False)
    process = context.Process(
        target=_child, args=(host, port, child_end, os.getpid(), rows), name="bench-receiver", daemon=True
    )
    process.start()
    child_end.close()
    try:
        if not parent_end.poll(timeout):
            raise RuntimeError(f"the receiver did not start listening within {timeout:g} s")
        bound = parent_end.recv()
    except (EOFError, RuntimeError):
        stop(process)
        raise
    finally:
        parent_end.close()
    return process, int(bound)


def stop(process: BaseProcess, timeout: float = 5.0) -> None:
    """End a receiver process started by :func:`start`."""
    if process.is_alive():
        process.terminate()
        process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join(timeout)


def _request(port: int, method: str, path: str, host: str = "127.0.0.1", timeout: float = 10.0) -> Any:
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    return orjson.loads(body) if body else None


def get_stats(port: int, host: str = "127.0.0.1") -> Stats:
    """The receiver's counts, fetched synchronously."""
    stats: Stats = _request(port, "GET", "/stats", host)
    return stats


def reset(port: int, *, latency: bool = False, host: str = "127.0.0.1") -> None:
    """Clear the receiver's counts, synchronously."""
    _request(port, "POST", "/reset?latency=1" if latency else "/reset", host)


def get_rows(port: int, host: str = "127.0.0.1") -> tuple[list[int], list[float]]:
    """The rowIds received while latency recording was on and their receipt times, fetched synchronously (a
    receiver started with ``rows=True``)."""
    doc = _request(port, "GET", "/rows", host, timeout=30.0)
    return list(doc["ids"]), list(doc["times"])


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m bench.receiver --port N [--host 127.0.0.1]``."""
    parser = argparse.ArgumentParser(prog="python -m bench.receiver", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9000, help="listen port (0: any free one; default 9000)")
    args = parser.parse_args(argv)
    try:
        uvloop.run(serve(args.host, args.port))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
