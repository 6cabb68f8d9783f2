"""What the parts of bench/pipeline.py share: the options, a run's :class:`Context`, a fresh service per part,
and the two halves of every measurement: recording events over HTTP and waiting until the receiver has them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from bench import receiver
from bench.harness.api import Api
from bench.harness.databases import is_postgres, redact
from bench.harness.lifecycle import Run
from bench.harness.limits import BenchError, Watch
from bench.harness.processes import RssSampler
from bench.harness.receiver_client import ReceiverClient
from bench.harness.report import log, out
from bench.harness.service import TABLE, Service, wait_ready

ACTION = "insert"
TIMESTAMP = "2020-01-01 00:00:00"
PROBE_TABLE = "bench_probe"


@dataclass
class Options:
    events: int
    call_size: int
    clients: int
    webhook_events: int
    latency_seconds: float
    latency_rate: int
    latency_call: int
    backlog_events: int
    separate_backlog: bool
    ceiling_seconds: float
    ceiling_concurrency: int
    database_url: str | None
    workers: int | None
    env: dict[str, str]
    timeout: float
    stall: float
    parts: list[str]
    keep: bool
    quick: bool

    @property
    def postgres(self) -> bool:
        return is_postgres(self.database_url)

    @property
    def backlog_in_a(self) -> bool:
        """(d) is measured in run (a): both run, with the same size and settings, unless --separate-backlog-run."""
        return (
            "a" in self.parts and "d" in self.parts and not self.separate_backlog and self.backlog_events == self.events
        )


def layout_of(options: Options) -> str:
    """The service's processes in words, e.g. ``1 api + 3 workers on PostgreSQL``."""
    store = "PostgreSQL" if options.postgres else "SQLite"
    if options.workers is None:
        return f"1 serve on {store}"
    return f"1 api + {options.workers} worker{'s' if options.workers != 1 else ''} on {store}"


def event_bodies(total: int, per_call: int) -> list[tuple[bytes, int]]:
    """POST /v1/event bodies for rowIds 1..total, per_call items each: [(body, items)]."""
    head = orjson.dumps({"table": TABLE, "action": ACTION})[:-1] + b',"items":['
    item = b'{"rowId":%d,"timestamp":"' + TIMESTAMP.encode() + b'","data":null}'
    bodies: list[tuple[bytes, int]] = []
    row = 1
    while row <= total:
        count = min(per_call, total - row + 1)
        items = b",".join([item % r for r in range(row, row + count)])
        bodies.append((head + items + b"]}", count))
        row += count
    return bodies


@dataclass
class Running:
    service: Service
    api: Api
    sampler: RssSampler


@dataclass
class Context(Run):
    """A run of bench/pipeline.py: what every part gets, and the results so far (by part letter)."""

    options: Options
    session: aiohttp.ClientSession
    receiver: ReceiverClient
    targets: dict[str, float]
    layout: str
    results: dict[str, Any] = field(default_factory=dict)
    bodies: dict[tuple[int, int], list[tuple[bytes, int]]] = field(default_factory=dict)

    def event_bodies(self, total: int) -> list[tuple[bytes, int]]:
        key = (total, self.options.call_size)
        if key not in self.bodies:
            self.bodies.clear()
            self.bodies[key] = event_bodies(total, self.options.call_size)
        return self.bodies[key]


@contextlib.asynccontextmanager
async def running_service(ctx: Context, label: str, settings: dict[str, str]) -> AsyncIterator[Running]:
    """A fresh service (own store: a new SQLite file, or with --workers a new PostgreSQL database; the given one
    otherwise) with the bench's user and configuration, until exit; then stopped and its database dropped."""
    opts = ctx.options
    shown = " ".join(f"{k.removeprefix('WEBHOOK_MANAGER_')}={v}" for k, v in sorted({**settings, **opts.env}.items()))
    out(f"({label}) service: {ctx.layout}, {shown or 'default settings'}")
    service: Service | None = None
    database: str | None = None
    sampler: RssSampler | None = None
    sampling: asyncio.Task[None] | None = None
    try:
        if opts.workers is not None:
            assert opts.database_url is not None
            database_url, database = ctx.res.databases.create(opts.database_url, "wm_bench_")
        else:
            database_url = opts.database_url or f"sqlite:///{ctx.workdir / f'wm-{label}.db'}"
        service = Service(label, ctx.exe, database_url, {**settings, **opts.env}, ctx.workdir, opts.workers, ctx.layout)
        ctx.res.processes.extend(service.processes)
        log(
            f"({label}) starting {ctx.layout} on port {service.port}, store {redact(database_url)},"
            f" {shown or 'default settings'}"
        )
        account_error = service.create_account(ctx.deadline)  # migrates the store first, before any process runs
        service.start()
        api = Api(ctx.session, service, ctx.deadline)
        await wait_ready(service, ctx.deadline)
        await service.wait_workers(ctx.deadline)
        await api.login(account_error)
        await api.configure(TABLE, ACTION, ctx.receiver.endpoint)
        # A probe on a table no configuration matches: says early whether POST /v1/event exists, records nothing.
        probe = orjson.dumps(
            {"table": PROBE_TABLE, "action": ACTION, "items": [{"rowId": 0, "timestamp": TIMESTAMP, "data": None}]}
        )
        await api.post_events(probe, 1)
        sampler = RssSampler(service.pids)
        sampler.reset_peak()
        sampling = asyncio.create_task(sampler.run())
        yield Running(service, api, sampler)
    finally:
        if sampling is not None:
            sampling.cancel()
            await asyncio.wait({sampling}, timeout=1.0)
        if sampler is not None:
            sampler.finish()
        if service is not None:
            log(f"({label}) stopping the service ({service.layout})")
            service.stop()
            problems = service.log_problems()
            if problems:
                log(f"({label}) {len(problems)} warning/error line(s) in the service's logs; the first: {problems[0]}")
            ctx.results.setdefault("log_problems", {})[label] = problems[:20]
        if database is not None:
            ctx.res.databases.drop(database)


async def all_or_nothing(coros: list[Coroutine[Any, Any, None]]) -> None:
    """Run coroutines concurrently; on the first failure cancel the others and raise it."""
    tasks = [asyncio.create_task(coro) for coro in coros]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def record_all(ctx: Context, running: Running, bodies: list[tuple[bytes, int]], label: str) -> tuple[int, int]:
    """POST every body with ``--clients`` concurrent clients; (received, recorded)."""
    queue = iter(bodies)
    totals = [0, 0]

    async def client() -> None:
        for body, items in queue:
            ctx.deadline.check(f"({label}) recording events")
            received, recorded = await running.api.post_events(body, items)
            totals[0] += received
            totals[1] += recorded

    await all_or_nothing([client() for _ in range(ctx.options.clients)])
    return totals[0], totals[1]


async def wait_for_events(ctx: Context, running: Running, expected: int, label: str) -> receiver.Stats:
    """Poll the receiver until it has ``expected`` events; bounded by the deadline and the stall limit."""
    watch = Watch(ctx.options.stall)
    while True:
        stats = await ctx.receiver.stats()
        if stats["events"] >= expected:
            return stats
        now = time.monotonic()
        if watch.stalled(stats["events"], now):
            tail = running.service.log_tail()
            raise BenchError(
                f"({label}) delivery stalled: {stats['events']:,} of {expected:,} events received in "
                f"{stats['webhooks']:,} webhooks, none in the last {watch.stall:g} s"
                + (f"; service log: {tail}" if tail else "")
            )
        gone = running.service.exited()
        if gone is not None:
            raise BenchError(f"({label}) {gone}")
        if watch.report_due(now):
            log(f"({label}) {stats['events']:,} of {expected:,} events received")
        ctx.deadline.check(f"({label}) waiting for webhooks ({stats['events']:,} of {expected:,} events received)")
        await asyncio.sleep(0.05)
