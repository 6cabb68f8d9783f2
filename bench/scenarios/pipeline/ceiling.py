"""(e) the raw ceiling: a bare aiohttp client POSTing webhook-sized bodies (100 events, then 1 event) to the
receiver for ``--ceiling-seconds`` each, with ``--ceiling-concurrency`` tasks; then the receiver's own capacity
from a minimal client (no HTTP library), which shows the receiver is not what limits the rates. No service runs.
(a) and (b) are shown as ratios to these figures."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import time
from typing import Any, cast

import aiohttp
import orjson

from bench.harness.limits import BenchError
from bench.harness.processes import busy, cpu_seconds
from bench.harness.report import out
from bench.harness.service import CLIENT_CODE, HOST, SECRET, TABLE
from bench.scenarios.pipeline.context import ACTION, TIMESTAMP, Context, all_or_nothing

WEBHOOK_ID = "6284e24920ab9a8b363344dd"


def webhook_body(events: int) -> bytes:
    """A realistic webhook body (CONTRACT.md §6) with ``events`` items."""
    return orjson.dumps(
        {
            "id": WEBHOOK_ID,
            "hmac": hmac.new(SECRET.encode(), WEBHOOK_ID.encode(), hashlib.sha256).hexdigest(),
            "clientCode": CLIENT_CODE,
            "table": TABLE,
            "action": ACTION,
            "eventCount": str(events),
            "items": [{"rowId": 1_000_000 + i, "timestamp": TIMESTAMP, "data": None} for i in range(events)],
        }
    )


def webhook_headers(body: bytes) -> dict[str, str]:
    """The headers a webhook carries (CONTRACT.md §6), so the ceiling's requests have the real size."""
    stamp = str(int(time.time()))
    mac = hmac.new(SECRET.encode(), f"{WEBHOOK_ID}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "User-Agent": "webhook-manager/0.1.0",
        "webhook-id": WEBHOOK_ID,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


async def ceiling_once(ctx: Context, events: int) -> dict[str, Any]:
    """Bare aiohttp client → receiver with one webhook body of ``events`` items, for --ceiling-seconds."""
    opts = ctx.options
    url = ctx.receiver.endpoint
    body = webhook_body(events)
    headers = webhook_headers(body)
    await ctx.receiver.reset()
    loop = asyncio.get_running_loop()
    count = 0
    ctx.deadline.check("(e) measuring the raw ceiling")
    connector = aiohttp.TCPConnector(limit=opts.ceiling_concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        stop_at = loop.time() + opts.ceiling_seconds

        async def worker() -> None:
            nonlocal count
            while loop.time() < stop_at:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise BenchError(f"(e) the receiver answered {response.status}")
                count += 1

        cpu_client, cpu_receiver = cpu_seconds(os.getpid()), cpu_seconds(ctx.receiver.pid)
        started = time.perf_counter()
        await all_or_nothing([worker() for _ in range(opts.ceiling_concurrency)])
        elapsed = time.perf_counter() - started
        client_cpu = busy(cpu_client, cpu_seconds(os.getpid()), elapsed)
        receiver_cpu = busy(cpu_receiver, cpu_seconds(ctx.receiver.pid), elapsed)
    stats = await ctx.receiver.stats()
    if stats["webhooks"] != count or stats["events"] != count * events:
        raise BenchError(
            f"(e) the receiver counted {stats['webhooks']} requests / {stats['events']} events, "
            f"the client {count} / {count * events}"
        )
    out(
        f"(e) raw ceiling, {events}-event webhook body ({len(body):,} B): {count / elapsed:,.0f} requests/s"
        f" = {count * events / elapsed:,.0f} events/s  [aiohttp, {opts.ceiling_concurrency} tasks,"
        f" {elapsed:.1f} s, {count:,} requests; CPU busy: client {client_cpu or 0:.0%},"
        f" receiver {receiver_cpu or 0:.0%}]"
    )
    return {
        "client_cpu": client_cpu,
        "receiver_cpu": receiver_cpu,
        "body_bytes": len(body),
        "requests": count,
        "elapsed_s": elapsed,
        "requests_per_s": count / elapsed,
        "events_per_s": count * events / elapsed,
    }


class _MinimalClient(asyncio.Protocol):
    """A keep-alive connection that sends the same request again as soon as an answer arrives."""

    def __init__(self, request: bytes, state: list[int]) -> None:
        self.request = request
        self.state = state  # [answers counted, 1 while running]
        self.transport: asyncio.WriteTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.WriteTransport, transport)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        answers = data.count(b"HTTP/1.1 ")
        self.state[0] += answers
        if self.state[1] and self.transport is not None:
            self.transport.write(self.request * answers)


async def receiver_capacity(ctx: Context, events: int, connections: int = 8) -> float:
    """Requests/s the receiver takes from a minimal client (no HTTP library): shows it is not the limit."""
    body = webhook_body(events)
    head = "".join(f"{k}: {v}\r\n" for k, v in webhook_headers(body).items())
    request = (
        f"POST /hook HTTP/1.1\r\nHost: {HOST}:{ctx.receiver.port}\r\n{head}Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    await ctx.receiver.reset()
    loop = asyncio.get_running_loop()
    state = [0, 1]
    seconds = max(0.5, ctx.options.ceiling_seconds / 2)
    transports = []
    started = time.perf_counter()
    try:
        for _ in range(connections):
            transport, _protocol = await loop.create_connection(
                lambda: _MinimalClient(request, state), HOST, ctx.receiver.port
            )
            transports.append(transport)
        await asyncio.sleep(seconds)
        state[1] = 0
        elapsed = time.perf_counter() - started
    finally:
        for transport in transports:
            transport.close()
    return state[0] / elapsed


async def run(ctx: Context) -> None:
    opts = ctx.options
    results: dict[str, Any] = {"concurrency": opts.ceiling_concurrency, "seconds": opts.ceiling_seconds}
    for events in (100, 1):
        results[f"body_{events}"] = await ceiling_once(ctx, events)
    ctx.deadline.check("(e) measuring the receiver's capacity")
    capacity = await receiver_capacity(ctx, 1)
    results["receiver_capacity_requests_per_s"] = capacity
    aiohttp_rate = results["body_1"]["requests_per_s"]
    out(
        f"(e) receiver capacity: {capacity:,.0f} requests/s of 1-event bodies from a minimal client (no HTTP library,"
        f" 8 keep-alive connections, one request in flight each) = {capacity / aiohttp_rate:.1f}x the aiohttp rate"
    )
    ctx.results["e"] = results
