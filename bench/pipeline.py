"""End-to-end benchmark of webhook-manager's pipeline: events in over HTTP, webhooks out to a local receiver.

Run from the checkout with the project's virtualenv::

    .venv/bin/python bench/pipeline.py [--events 1000000] [--database-url sqlite:///...] [--quick]
    .venv/bin/python bench/pipeline.py --database-url postgresql://postgres@127.0.0.1:5432/postgres --workers 3

It starts a bare HTTP receiver (bench/receiver.py) in a separate process and, for each part, a fresh service (the
``webhook-manager`` command installed beside the Python that runs this script), creates a client, a user and one
configuration pointing at the receiver, and measures, against the external contract only (CONTRACT.md §3–§9).

The service of a part is either one ``webhook-manager serve`` (the default: on a fresh temporary SQLite file, or on
the store ``--database-url`` names), or, with ``--workers N`` (PostgreSQL only), one ``webhook-manager api`` plus N
``webhook-manager worker`` processes on a fresh database ``wm_bench_<random>`` created for the part on the server
``--database-url`` names (through that URL's database) and dropped afterwards. Peak RSS and service CPU are then
summed over all of the service's processes. The targets (bench/targets.py) are the issue's: on SQLite (a) >= 100 000
events/s and (b) >= 5 000 webhooks/s; on PostgreSQL, with 3 workers, (a) >= 60 000 and (b) >= 3 000; (c) and (d)
are the same.

The parts, one module each in bench/scenarios/pipeline/ (run in this order):

(e) the raw ceiling: a bare aiohttp client posting webhook-sized bodies (100 events and 1 event) to the receiver;
(a) end-to-end events/s: N events recorded with POST /v1/event in calls of 10 000, from the first POST until the
    receiver has the last event (and the recording rate alone);
(b) webhooks/s with one event per webhook (WEBHOOK_MANAGER_BATCH_MAX_EVENTS=1);
(c) p50/p99 latency from record to receipt at a steady 1 000 events/s (calls of 10 every 10 ms), default settings;
(d) the service's peak RSS while draining a backlog of 1 000 000 events recorded as fast as possible.

This file only parses the options, runs the chosen parts and prints the header and the summary; the processes,
databases, service, receiver and output are bench/harness/'s (see bench/README.md). Every wait is bounded
(``--timeout``, ``--stall``); the service's processes and the receiver are always stopped and the bench's databases
dropped on exit, also on errors and on SIGTERM. All traffic goes to 127.0.0.1 (but the PostgreSQL server's, which
goes where ``--database-url`` says). Progress goes to stderr; figures to stdout, ending with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

if __package__ in (None, ""):  # run as a script: make the checkout importable for `bench.*`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness.databases import is_postgres, redact, server_shown
from bench.harness.lifecycle import Run, run_main
from bench.harness.limits import BenchError
from bench.harness.receiver_client import ReceiverClient, start_receiver
from bench.harness.report import json_line, log, out, verdict
from bench.scenarios.pipeline import backlog, ceiling, latency, throughput, webhooks
from bench.scenarios.pipeline.context import Context, Options, layout_of
from bench.scenarios.pipeline.measure import ceiling_of
from bench.targets import PIPELINE_POSTGRES_WORKERS, pipeline_targets

# Every part, in the order they run: its letter (as --parts names it) and its scenario.
PARTS: dict[str, Callable[[Context], Awaitable[None]]] = {
    "e": ceiling.run,
    "a": throughput.run,
    "b": webhooks.run,
    "c": latency.run,
    "d": backlog.run,
}


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="bench/pipeline.py",
        description="End-to-end benchmark of webhook-manager (see the module docstring).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="(a) events to record and receive")
    parser.add_argument("--call-size", type=int, default=10_000, help="(a)(b)(d) events per POST /v1/event")
    parser.add_argument("--clients", type=int, default=4, help="(a)(b)(d) concurrent recording clients")
    parser.add_argument("--webhook-events", type=int, default=100_000, help="(b) events, one per webhook")
    parser.add_argument("--latency-seconds", type=float, default=20.0, help="(c) how long to send")
    parser.add_argument("--latency-rate", type=int, default=1_000, help="(c) events per second")
    parser.add_argument("--latency-call", type=int, default=10, help="(c) events per call")
    parser.add_argument("--backlog-events", type=int, default=1_000_000, help="(d) backlog size")
    parser.add_argument(
        "--separate-backlog-run",
        action="store_true",
        help="(d) in a run of its own even when it would equal run (a) (same size, same settings)",
    )
    parser.add_argument("--ceiling-seconds", type=float, default=4.0, help="(e) seconds per body size")
    parser.add_argument("--ceiling-concurrency", type=int, default=64, help="(e) concurrent client tasks")
    parser.add_argument(
        "--database-url",
        default=None,
        help="store for every service run (default: a fresh temporary SQLite file per run); with --workers, the"
        " PostgreSQL server (and the database to connect to) on which each run gets a fresh database",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="run 1 `api` + N `worker` processes per run instead of one `serve` (needs a postgresql:// --database-url)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra WEBHOOK_MANAGER_* setting for every service run (inherited ones are dropped)",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="global deadline, seconds")
    parser.add_argument("--stall", type=float, default=30.0, help="give up when no event arrives for this long")
    parser.add_argument("--parts", default="e,a,b,c,d", help="which parts to run, comma-separated")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (stores, service logs)")
    parser.add_argument("--quick", action="store_true", help="scale every count and duration down 10x (smoke run)")
    args = parser.parse_args(argv)

    env: dict[str, str] = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("WEBHOOK_MANAGER_"):
            parser.error(f"--env takes WEBHOOK_MANAGER_NAME=VALUE, not {item!r}")
        env[name] = value
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        parser.error(f"--parts takes letters a–e, not {','.join(unknown)}")
    scale = 10 if args.quick else 1
    options = Options(
        events=max(1, args.events // scale),
        call_size=args.call_size,
        clients=args.clients,
        webhook_events=max(1, args.webhook_events // scale),
        latency_seconds=args.latency_seconds / scale,
        latency_rate=args.latency_rate,
        latency_call=args.latency_call,
        backlog_events=max(1, args.backlog_events // scale),
        separate_backlog=args.separate_backlog_run,
        ceiling_seconds=max(0.5, args.ceiling_seconds / scale),
        ceiling_concurrency=args.ceiling_concurrency,
        database_url=args.database_url,
        workers=args.workers,
        env=env,
        timeout=args.timeout,
        stall=args.stall,
        parts=parts,
        keep=args.keep,
        quick=args.quick,
    )
    if not 1 <= options.call_size <= 10_000 or not 1 <= options.latency_call <= 10_000:
        parser.error("events per call must be 1–10000 (CONTRACT §5)")
    if options.clients < 1 or options.ceiling_concurrency < 1 or options.latency_rate < 1:
        parser.error("--clients, --ceiling-concurrency and --latency-rate must be at least 1")
    if options.workers is not None:
        if options.workers < 1:
            parser.error("--workers must be at least 1")
        if not is_postgres(options.database_url):
            parser.error("--workers runs `api` + `worker` processes on PostgreSQL: give --database-url postgresql://…")
    return options


def print_header(ctx: Context) -> None:
    """What runs where, and the targets the figures are held to."""
    opts, targets = ctx.options, ctx.targets
    if opts.workers is not None:
        assert opts.database_url is not None
        where = f"a fresh database per part on {server_shown(opts.database_url)}"
    elif opts.postgres:
        where = f"the one database {redact(opts.database_url or '')}, shared by the parts"
    elif opts.database_url:
        where = f"the one store {opts.database_url}, shared by the parts"
    else:
        where = "a fresh SQLite file per part"
    if opts.postgres:
        whose = f"the issue's for PostgreSQL, stated for 1 api + {PIPELINE_POSTGRES_WORKERS} workers"
        if opts.workers != PIPELINE_POSTGRES_WORKERS:
            whose += f"; this run: {ctx.layout}"
    else:
        whose = "the issue's for SQLite, one serve process"
    out(f"service: {ctx.layout} ({where})")
    out(
        f"targets ({whose}): (a) >= {targets['a_events_per_s']:,.0f} events/s end-to-end in full batches,"
        f" (b) >= {targets['b_webhooks_per_s']:,.0f} one-event webhooks/s, (c) p50 <= {targets['c_p50_ms']:.0f} ms"
        f" and p99 <= {targets['c_p99_ms']:.0f} ms, (d) peak RSS <= {targets['d_peak_rss_mb']:.0f} MB"
        + (" (summed over the processes)" if opts.workers is not None else "")
    )


def print_summary(ctx: Context, error: str | None) -> None:
    """The ratios to the raw ceiling, the verdicts, and the JSON line."""
    results = ctx.results
    targets = ctx.targets
    summary: dict[str, Any] = {
        "quick": ctx.options.quick,
        "service": ctx.layout,
        "store": "postgresql" if ctx.options.postgres else "sqlite",
        "workers": ctx.options.workers,
        "targets": targets,
        "ceiling": results.get("e"),
        "a": results.get("a"),
        "b": results.get("b"),
        "c": results.get("c"),
        "d": results.get("d"),
        "log_problems": results.get("log_problems"),
        "error": error,
    }
    a, b, c, d = (results.get(k) for k in "abcd")
    ceiling_100 = ceiling_of(ctx, 100, "events_per_s")
    ceiling_1 = ceiling_of(ctx, 1, "requests_per_s")
    summary["figures"] = {
        "a_events_per_s": a and a["events_per_s"],
        "a_record_events_per_s": a and a["record_events_per_s"],
        "b_webhooks_per_s": b and b["webhooks_per_s"],
        "c_p50_ms": c and c["p50_ms"],
        "c_p99_ms": c and c["p99_ms"],
        "d_peak_rss_mb": d and d["peak_rss_mb"],
        "e_ceiling_100_events_per_s": ceiling_100,
        "e_ceiling_100_requests_per_s": ceiling_of(ctx, 100, "requests_per_s"),
        "e_ceiling_1_requests_per_s": ceiling_1,
        "a_ratio_to_ceiling": a and ceiling_100 and a["events_per_s"] / ceiling_100,
        "a_record_ratio_to_ceiling": a and ceiling_100 and a["record_events_per_s"] / ceiling_100,
        "b_ratio_to_ceiling": b and ceiling_1 and b["webhooks_per_s"] / ceiling_1,
    }
    checks: dict[str, bool | None] = {
        "a": None if not a else a["events_per_s"] >= targets["a_events_per_s"],
        "b": None if not b else b["webhooks_per_s"] >= targets["b_webhooks_per_s"],
        "c": None
        if not c or c["p50_ms"] is None or c["p99_ms"] is None
        else c["p50_ms"] <= targets["c_p50_ms"] and c["p99_ms"] <= targets["c_p99_ms"],
        "d": None if not d else d["peak_rss_mb"] <= targets["d_peak_rss_mb"],
    }
    summary["pass"] = checks
    if (a or b) and (ceiling_100 or ceiling_1):
        out("ratios to the raw ceiling (e):")
        if a and ceiling_100:
            out(
                f"  (a) end-to-end {a['events_per_s'] / ceiling_100:.3f} of {ceiling_100:,.0f} events/s"
                " (100-event bodies)"
            )
            out(f"  (a) recording  {a['record_events_per_s'] / ceiling_100:.3f} of {ceiling_100:,.0f} events/s")
        if b and ceiling_1:
            out(
                f"  (b) webhooks/s {b['webhooks_per_s'] / ceiling_1:.3f} of {ceiling_1:,.0f} requests/s"
                " (1-event bodies)"
            )
    out("targets: " + ", ".join(f"({k}) {verdict(v)}" for k, v in checks.items()))
    json_line(summary)


async def run(options: Options, base: Run) -> str | None:
    """All chosen parts; the error's one line, or None."""
    exe = base.exe
    log(f"starting the receiver; deadline {options.timeout:g} s" + (" (quick: counts / 10)" if options.quick else ""))
    process, port = start_receiver()
    base.res.receivers.append(process)
    timeout = aiohttp.ClientTimeout(total=120)
    connector = aiohttp.TCPConnector(limit=max(16, options.clients * 2))
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        ctx = Context(
            base.deadline,
            exe,
            base.workdir,
            base.res,
            options,
            session,
            ReceiverClient(session, port, process.pid or 0),
            pipeline_targets(options.postgres),
            layout_of(options),
        )
        print_header(ctx)
        error: str | None = None
        try:
            if not exe.exists() and any(p in options.parts for p in "abcd"):
                raise BenchError(f"{exe} does not exist: run the bench with the project's .venv/bin/python")
            for part, scenario in PARTS.items():
                if part in options.parts:
                    await scenario(ctx)
        except BenchError as exc:
            error = str(exc)
        except asyncio.CancelledError:
            error = "interrupted"
        print_summary(ctx, error)
        return error


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)

    def bench(base: Run) -> bool:
        async def guarded() -> str | None:
            task = asyncio.current_task()
            assert task is not None
            # In the event loop, SIGTERM cancels the run, which still prints its summary before the cleanup.
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
            return await run(options, base)

        error = uvloop.run(guarded())
        if error:
            raise BenchError(error)
        return True

    return run_main("wm-bench-", options.keep, options.timeout, bench)


if __name__ == "__main__":
    sys.exit(main())
