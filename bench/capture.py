"""Benchmark of database change capture: changes/s captured from one big UPDATE, and commit→webhook latency.

Run from the checkout with the project's virtualenv::

    .venv/bin/python bench/capture.py [--sources sqlite,postgres-logical,postgres-trigger,mysql] [--quick]
    .venv/bin/python bench/capture.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

For each source (``sqlite``: triggers and an outbox in the application's file; ``postgres-logical``: a replication
slot decoded by pgoutput; ``postgres-trigger``: statement triggers and an outbox; ``mysql``: the row-based binlog
of MySQL/MariaDB read as a replica reads it, with mysql-replication), on fresh application databases (SQLite files
in a temporary folder, or databases ``wm_bench_capture_<random>`` on the server ``--postgres-url`` or, for mysql,
``--mysql-url`` names) and a fresh store per part (a temporary SQLite file, or with ``--database-url
postgresql://…`` a database ``wm_bench_capture_store_<random>`` on that server), it measures, one module each in
bench/scenarios/capture/:

(a) throughput (``throughput.py``): a table ``product (id integer primary key, name text, price real)`` filled with
    ``--rows`` rows before the capture is set up, a configuration for (product, update), and the real
    ``webhook-manager capture …`` command running alone. ONE ``UPDATE product SET price = price + 1`` is committed;
    changes/s = rows / (time from the commit's return to the moment the store holds all of its update events);
(r) the raw read of the same changes, in the same run, after (a) (``raw_read.py``): a second pgoutput slot read
    with ``read_message()`` (postgres-logical), the outbox of a copy of the application database given the same
    UPDATE with no capture (sqlite, postgres-trigger), or a bare ``BinLogStreamReader`` (mysql);
(c) latency (``latency.py``): ``webhook-manager serve --config FILE`` with a ``[[capture]]`` section for the source,
    a configuration for (product, insert) pointing to the bench receiver (bench/receiver.py, noting the receipt
    time of every rowId), and an application writer inserting ``--rate`` rows/s (``--per-transaction`` rows per
    transaction) for ``--seconds``; commit→receipt per row.

The issue's targets (bench/targets.py): >= 50 000 changes/s captured (mysql: >= 30 000); p99 <= 100 ms. This file
only parses the options, runs the parts per source and prints the header, one block per source, the table and the
JSON line; the processes, databases, service, receiver and output are bench/harness/'s (see bench/README.md). Every
wait is bounded (``--timeout``, ``--stall``); subprocesses, the receiver, replication slots and databases are
removed on exit, also on errors and on SIGTERM. Progress goes to stderr; figures to stdout, ending with a table and
one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shlex
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg2
import pymysql

if __package__ in (None, ""):  # run as a script: make the checkout importable for `bench.*`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness.databases import is_mysql, is_postgres, mysql_execute, pg_execute, redact, server_shown
from bench.harness.lifecycle import Run, run_main
from bench.harness.limits import BenchError
from bench.harness.receiver_client import start_receiver
from bench.harness.report import fmt, json_line, log, out, table, verdict
from bench.scenarios.capture import latency, throughput
from bench.scenarios.capture.context import SOURCES, Context, Options
from bench.targets import CAPTURE_P99_MS, capture_changes_per_s

# The parts run for each source, in this order: (a) includes (r).
PARTS: tuple[tuple[str, Callable[[Context, str], dict[str, Any]]], ...] = (("a", throughput.run), ("c", latency.run))


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="bench/capture.py",
        description="Benchmark of database change capture (see the module docstring).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--sources", default=",".join(SOURCES), help="which sources, comma-separated")
    parser.add_argument(
        "--rows", type=int, default=None, help="(a) rows of the one UPDATE (default 200000; 50000 quick)"
    )
    parser.add_argument("--seconds", type=float, default=None, help="(c) how long to write (default 10; 3 quick)")
    parser.add_argument("--rate", type=int, default=1_000, help="(c) rows inserted per second")
    parser.add_argument("--per-transaction", type=int, default=10, help="(c) rows per transaction")
    parser.add_argument(
        "--database-url",
        default=None,
        help="the store: a postgresql:// URL names the server (and the database to connect to) on which each part"
        " gets a fresh database; default: a fresh temporary SQLite file per part",
    )
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="server (and database to connect to) of the PostgreSQL application databases; needs wal_level=logical"
        " and a role allowed to replicate for postgres-logical",
    )
    parser.add_argument(
        "--mysql-url",
        default="mysql://root@127.0.0.1:3306",
        help="server of the MySQL/MariaDB application databases (mysql source); needs a ROW binlog with"
        " binlog_row_metadata=FULL and a user allowed to create databases and read the binlog",
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="global deadline, seconds")
    parser.add_argument("--stall", type=float, default=60.0, help="give up on a wait when nothing moves this long")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (SQLite files, logs)")
    parser.add_argument("--quick", action="store_true", help="50 000 rows and 3 s (smoke run)")
    args = parser.parse_args(argv)
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    unknown = [s for s in sources if s not in SOURCES]
    if unknown or not sources:
        parser.error(f"--sources takes some of {','.join(SOURCES)}, not {args.sources!r}")
    if args.database_url is not None and not is_postgres(args.database_url):
        parser.error("--database-url takes a postgresql:// URL (the default store is a fresh SQLite file per part)")
    if not is_postgres(args.postgres_url):
        parser.error("--postgres-url takes a postgresql:// URL")
    if not is_mysql(args.mysql_url):
        parser.error("--mysql-url takes a mysql:// URL")
    options = Options(
        sources=sources,
        rows=args.rows if args.rows is not None else (50_000 if args.quick else 200_000),
        seconds=args.seconds if args.seconds is not None else (3.0 if args.quick else 10.0),
        rate=args.rate,
        per_transaction=args.per_transaction,
        database_url=args.database_url,
        postgres_url=args.postgres_url,
        mysql_url=args.mysql_url,
        timeout=args.timeout,
        stall=args.stall,
        keep=args.keep,
        quick=args.quick,
    )
    if options.rows < 1 or options.rate < 1 or options.per_transaction < 1 or options.seconds <= 0:
        parser.error("--rows, --rate, --per-transaction and --seconds must be positive")
    return options


def machine_info(options: Options) -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f", {int(line.split()[1]) / 1024 / 1024:.1f} GB RAM"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    server = "unreachable"
    with contextlib.suppress(BenchError, psycopg2.Error):
        server = str(pg_execute(options.postgres_url, "SHOW server_version")[0][0])
    mysql = "unreachable"
    if "mysql" in options.sources:
        with contextlib.suppress(BenchError, pymysql.MySQLError):
            mysql = str(mysql_execute(options.mysql_url, "SELECT VERSION()")[0][0])
    commit = "unknown"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        root = Path(__file__).resolve().parent.parent
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, timeout=10)
        commit = head.stdout.decode().strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")
    return (
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs ({model or 'unknown model'}){memory},"
        f" load average {load}; Python {platform.python_version()}, SQLite {sqlite3.sqlite_version},"
        f" PostgreSQL {server}"
        + (f", MySQL/MariaDB {mysql}" if "mysql" in options.sources else "")
        + f"; checkout {commit}"
    )


def print_header(opts: Options) -> None:
    out("command: " + shlex.join([sys.executable, *sys.argv]))
    out(machine_info(opts))
    store = (
        "a fresh SQLite file per part"
        if opts.database_url is None
        else f"a fresh database per part on {server_shown(opts.database_url)}"
    )
    mysql = f", MySQL/MariaDB ones on {redact(opts.mysql_url).rstrip('/')}" if "mysql" in opts.sources else ""
    out(
        f"store: {store}; PostgreSQL application databases on {server_shown(opts.postgres_url)}{mysql}; (a)"
        f" {opts.rows:,} rows in one UPDATE; (c) {opts.rate:,} rows/s, {opts.per_transaction} per transaction, for"
        f" {opts.seconds:g} s"
    )
    targets = ", ".join(f"{s} >= {capture_changes_per_s(s):,.0f}" for s in opts.sources)
    out(f"targets: changes/s captured: {targets}; commit→webhook p99 <= {CAPTURE_P99_MS:.0f} ms")


def print_source(source: str, result: dict[str, Any]) -> None:
    """One source's lines: (a), (r), (c), or why it failed."""
    a = result.get("a")
    if a is not None:
        cpu, server = a["capture_cpu_s"], a["server_cpu_s"]
        busy = f"capture process CPU {cpu:.2f} s ({cpu / a['captured_s']:.0%} of a core)" if cpu is not None else ""
        if server is not None:
            during = a["server_cpu_during_update_s"]
            busy += f"; {a.get('server_cpu_what', 'its server backends')} {server:.2f} s, and {during:.2f} s during"
            busy += " the UPDATE"
        out(
            f"[{source}] (a) UPDATE of {a['rows']:,} rows committed in {a['update_s']:.2f} s; all {a['recorded']:,}"
            f" update events in the store {a['captured_s']:.2f} s after the commit = {a['captured_per_s']:,.0f}"
            f" changes/s (first after {fmt(a['first_after_s'], '.3f')} s; {busy})"
        )
        out(
            f"[{source}] (r) bare read: {a['raw_changes']:,} changes in {a['raw_s']:.3f} s = {a['raw_per_s']:,.0f}/s"
            f" [{a['raw_what']}"
            + (
                f"; first message after {a['raw_first_after_s']:.3f} s (the WAL decoded up to the commit), then"
                f" {a['raw_changes'] / max(1e-9, a['raw_s'] - a['raw_first_after_s']):,.0f}/s"
                if a.get("raw_first_after_s")
                else ""
            )
            + f"]; captured/raw = {fmt(a['ratio'], '.3f')}"
        )
    c = result.get("c")
    if c is not None:
        out(
            f"[{source}] (c) {c['rows']:,} rows inserted at {c['achieved_rate']:,.0f}/s (commit p50"
            f" {fmt(c['commit_p50_ms'], '.1f')} ms, p99 {fmt(c['commit_p99_ms'], '.1f')} ms); arrived"
            f" {c['arrived']:,} of {c['rows']:,}"
            + (f", {c['duplicates']:,} duplicate receipts" if c["duplicates"] else "")
            + f"; commit→receipt p50 {fmt(c['p50_ms'], '.1f')} ms, p90 {fmt(c['p90_ms'], '.1f')} ms,"
            f" p99 {fmt(c['p99_ms'], '.1f')} ms, max {fmt(c['max_ms'], '.1f')} ms"
        )
    if result.get("error"):
        out(f"[{source}] FAILED: {result['error']}")


def print_table(ctx: Context) -> bool:
    """The summary table; True when every figure was measured and met its target."""
    header = ("source", "captured changes/s", "raw read/s", "ratio", "p50 ms", "p99 ms", "arrived")
    rows: list[tuple[str, ...]] = [(*header, "changes/s target", "p99 target")]
    all_ok = True
    for source in ctx.options.sources:
        result = ctx.results.get(source, {})
        a, c = result.get("a"), result.get("c")
        target = capture_changes_per_s(source)
        throughput_ok = None if a is None else a["captured_per_s"] >= target
        latency_ok = None if c is None or c["p99_ms"] is None else bool(c["p99_ms"] <= CAPTURE_P99_MS and c["complete"])
        all_ok = all_ok and bool(throughput_ok) and bool(latency_ok)
        rows.append(
            (
                source,
                fmt(a and a["captured_per_s"]),
                fmt(a and a["raw_per_s"]),
                fmt(a and a["ratio"], ".3f"),
                fmt(c and c["p50_ms"], ".1f"),
                fmt(c and c["p99_ms"], ".1f"),
                "-" if c is None else f"{c['arrived']:,}/{c['rows']:,}",
                f">= {target:,.0f}: {verdict(throughput_ok)}",
                f"<= {CAPTURE_P99_MS:.0f} ms: {verdict(latency_ok)}",
            )
        )
    table(rows)
    return all_ok


def run(ctx: Context) -> bool:
    """Every source, each part on its own; True when all of them ran and met the targets."""
    opts = ctx.options
    print_header(opts)
    if not ctx.exe.exists():
        raise BenchError(f"{ctx.exe} does not exist: run the bench with the project's .venv/bin/python")
    process, ctx.receiver_port = start_receiver(rows=True)
    ctx.res.receivers.append(process)
    failed = False
    for source in opts.sources:
        result: dict[str, Any] = {}
        ctx.results[source] = result
        for part, measure in PARTS:
            try:
                result[part] = measure(ctx, source)
            except (BenchError, sqlite3.Error, psycopg2.Error, pymysql.MySQLError, OSError) as exc:
                failed = True
                why = str(exc) if isinstance(exc, BenchError) else f"{type(exc).__name__}: {str(exc).strip()}"
                result["error"] = f"({part}) {why}"
                log(f"[{source}] ({part}) failed: {why}")
                if "global deadline" in str(exc):
                    break
        print_source(source, result)
        if "global deadline" in str(result.get("error", "")):
            break
    all_ok = print_table(ctx)
    shown = {**opts.__dict__, "postgres_url": redact(opts.postgres_url), "mysql_url": redact(opts.mysql_url)}
    if opts.database_url is not None:
        shown["database_url"] = redact(opts.database_url)
    targets_of = {s: {"changes_per_s": capture_changes_per_s(s), "p99_ms": CAPTURE_P99_MS} for s in opts.sources}
    json_line({"quick": opts.quick, "options": shown, "targets": targets_of, "results": ctx.results})
    return all_ok and not failed


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)

    def bench(base: Run) -> bool:
        return run(Context(base.deadline, base.exe, base.workdir, base.res, options))

    return run_main("wm-bench-capture-", options.keep, options.timeout, bench)


if __name__ == "__main__":
    sys.exit(main())
