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
summed over all of the service's processes. The targets are the issue's: on SQLite (a) >= 100 000 events/s and
(b) >= 5 000 webhooks/s; on PostgreSQL, with 3 workers, (a) >= 60 000 and (b) >= 3 000; (c) and (d) are the same.

The parts:

(e) the raw ceiling: a bare aiohttp client posting webhook-sized bodies (100 events and 1 event) to the receiver;
(a) end-to-end events/s: N events recorded with POST /v1/event in calls of 10 000, from the first POST until the
    receiver has the last event (and the recording rate alone);
(b) webhooks/s with one event per webhook (WEBHOOK_MANAGER_BATCH_MAX_EVENTS=1);
(c) p50/p99 latency from record to receipt at a steady 1 000 events/s (calls of 10 every 10 ms), default settings;
(d) the service's peak RSS while draining a backlog of 1 000 000 events recorded as fast as possible.

Every wait is bounded (``--timeout``, ``--stall``); the service's processes and the receiver are always stopped and
the bench's databases dropped on exit, also on errors and on SIGTERM. All traffic goes to 127.0.0.1 (but the
PostgreSQL server's, which goes where ``--database-url`` says). Progress goes to stderr; figures to stdout, ending
with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, cast

import aiohttp
import asyncpg
import orjson
import uvloop

if __package__ in (None, ""):  # run as a script: make the checkout importable for `bench.receiver`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import receiver
from bench.common import (
    BenchError,
    Deadline,
    cpu_seconds,
    database_url_for,
    die_with_parent,
    free_port,
    log,
    out,
    redact,
    verdict,
)

HOST = "127.0.0.1"
CLIENT_CODE = "100"
USERNAME = "bench"
PASSWORD = "bench-password-0123456789"
TABLE = "product"
ACTION = "insert"
TIMESTAMP = "2020-01-01 00:00:00"
PROBE_TABLE = "bench_probe"
SECRET = "mySecretWord"

SQLITE_TARGETS: dict[str, float] = {
    "a_events_per_s": 100_000,
    "b_webhooks_per_s": 5_000,
    "c_p50_ms": 40,
    "c_p99_ms": 150,
    "d_peak_rss_mb": 300,
}
# The targets on PostgreSQL, with 1 api + 3 workers on a 2-core machine; (c) and (d) are SQLite's.
POSTGRES_TARGETS: dict[str, float] = {**SQLITE_TARGETS, "a_events_per_s": 60_000, "b_webhooks_per_s": 3_000}
TARGET_WORKERS = 3  # the worker count the PostgreSQL targets are stated for
WORKER_READY = "webhook-manager worker running"  # logged (level info) by `webhook-manager worker` once it runs


# --------------------------------------------------------------------------------------------------- settings


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
    unknown = [p for p in parts if p not in {"a", "b", "c", "d", "e"}]
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


def is_postgres(url: str | None) -> bool:
    return url is not None and url.startswith(("postgresql://", "postgres://"))


def targets_for(options: Options) -> dict[str, float]:
    return POSTGRES_TARGETS if is_postgres(options.database_url) else SQLITE_TARGETS


def layout_of(options: Options) -> str:
    """The service's processes in words, e.g. ``1 api + 3 workers on PostgreSQL``."""
    store = "PostgreSQL" if is_postgres(options.database_url) else "SQLite"
    if options.workers is None:
        return f"1 serve on {store}"
    return f"1 api + {options.workers} worker{'s' if options.workers != 1 else ''} on {store}"


# ------------------------------------------------------------------------------------------------- processes


def read_status_kb(pid: int, key: bytes) -> int | None:
    """A ``kB`` field of /proc/<pid>/status (VmRSS, VmHWM), or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(key):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def busy(before: float | None, after: float | None, elapsed: float) -> float | None:
    """Share of one core a process used between two cpu_seconds() readings."""
    return None if before is None or after is None or elapsed <= 0 else (after - before) / elapsed


def descendants(*pids: int) -> list[int]:
    """Every process below the given ones, found through /proc/*/stat."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                ppid = int(stat.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    todo = list(pids)
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class RssSampler:
    """Samples the resident memory of the service's processes (and any children of theirs), summed, until stopped."""

    def __init__(self, pids: list[int], interval: float = 0.1) -> None:
        self.pids = pids
        self.interval = interval
        self.peak_sampled_kb = 0
        self.samples = 0
        self.processes = len(pids)
        self.hwm_kb: int | None = None
        self.hwm_by_pid: list[int | None] = []
        self.hwm_reset = False

    def reset_peak(self) -> None:
        """Restart the kernel's peak (VmHWM) of every process now, so start-up and login (argon2 takes ~64 MiB)
        do not count."""
        reset = True
        for pid in self.pids:
            try:
                with open(f"/proc/{pid}/clear_refs", "wb") as clear_refs:
                    clear_refs.write(b"5")
            except OSError:
                reset = False
        self.hwm_reset = reset

    async def run(self) -> None:
        tree = list(self.pids)
        rounds = 0
        while True:
            if rounds % 20 == 0:
                tree = [*self.pids, *descendants(*self.pids)]
                self.processes = len(tree)
            rounds += 1
            total = sum(read_status_kb(pid, b"VmRSS:") or 0 for pid in tree)
            if total:
                self.samples += 1
                self.peak_sampled_kb = max(self.peak_sampled_kb, total)
            await asyncio.sleep(self.interval)

    def finish(self) -> None:
        """Read the kernel's high-water marks (summed); call before the service stops."""
        self.hwm_by_pid = [read_status_kb(pid, b"VmHWM:") for pid in self.pids]
        known = [kb for kb in self.hwm_by_pid if kb is not None]
        self.hwm_kb = sum(known) if len(known) == len(self.pids) else None

    def peak_mb(self) -> float:
        """The peak since :meth:`reset_peak`: the VmHWM (summed over the processes: each one's own peak, so at least
        the peak of the sum) if it could be reset, else the largest sample of the summed VmRSS."""
        if self.hwm_reset and self.hwm_kb:
            return max(self.hwm_kb, self.peak_sampled_kb) / 1024.0
        return self.peak_sampled_kb / 1024.0


class ServiceProcess:
    """One process of the service (``serve``, ``api`` or ``worker``), its output in a log file of its own."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "wb") as log_file:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def exit_status(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 3) -> str:
        text = [line.strip() for line in self.log_text().strip().splitlines() if WORKER_READY not in line]
        return " | ".join(line for line in text[-lines:] if line)

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()

    def wait_or_kill(self, until: float) -> None:
        """Wait until ``until`` (monotonic) for the process to end, then kill it."""
        process = self.process
        if process is None:
            return
        try:
            process.wait(max(0.1, until - time.monotonic()))
        except subprocess.TimeoutExpired:
            log(f"{self.log_path.stem}: no exit {STOP_GRACE_S:g} s after SIGTERM; killing it")
            process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)


PROBLEM = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|^Traceback")  # a log line worth reporting
STOP_GRACE_S = 15.0  # how long the service's processes get to stop after SIGTERM


class Service:
    """The service of one part on its own port and store: one ``webhook-manager serve``, or (``workers`` given)
    one ``webhook-manager api`` plus ``workers`` × ``webhook-manager worker``."""

    def __init__(
        self,
        label: str,
        exe: Path,
        database_url: str,
        settings: dict[str, str],
        workdir: Path,
        workers: int | None,
        layout: str,
    ) -> None:
        self.label = label
        self.exe = exe
        self.layout = layout
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOK_MANAGER_")}
        self.env.update(
            {
                "WEBHOOK_MANAGER_DATABASE_URL": database_url,
                "WEBHOOK_MANAGER_HOST": HOST,
                "WEBHOOK_MANAGER_PORT": str(self.port),
                "WEBHOOK_MANAGER_LOG_LEVEL": "warning",
                "WEBHOOK_MANAGER_ACCESS_LOG": "false",
                **settings,
            }
        )
        http = "serve" if workers is None else "api"
        command = [str(exe), http, "--port", str(self.port), "--allow-private-endpoints", "--no-bootstrap-account"]
        log_name = f"service-{label}.log" if workers is None else f"service-{label}-api.log"
        self.processes = [ServiceProcess(http, command, self.env, workdir / log_name)]
        # A worker says it runs only at level info; debug stays debug.
        level = "debug" if self.env["WEBHOOK_MANAGER_LOG_LEVEL"].lower() == "debug" else "info"
        worker_env = {**self.env, "WEBHOOK_MANAGER_LOG_LEVEL": level}
        for n in range(1, (workers or 0) + 1):
            self.processes.append(
                ServiceProcess(
                    f"worker-{n}",
                    [str(exe), "worker", "--allow-private-endpoints"],
                    worker_env,
                    workdir / f"service-{label}-worker-{n}.log",
                )
            )

    @property
    def workers(self) -> list[ServiceProcess]:
        return self.processes[1:]

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def create_account(self, deadline: Deadline) -> str | None:
        """Create client and user; the error's last line when that failed (e.g. the user exists already)."""
        command = [str(self.exe), "account", "create", "--client-code", CLIENT_CODE, "--username", USERNAME]
        command.append("--password-stdin")
        try:
            done = subprocess.run(
                command,
                input=(PASSWORD + "\n").encode(),
                env=self.env,
                capture_output=True,
                timeout=max(1.0, min(120.0, deadline.remaining())),
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"({self.label}) `webhook-manager account create` took over {exc.timeout:g} s") from exc
        if done.returncode == 0:
            return None
        lines = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else f"exit status {done.returncode}"

    def start(self) -> None:
        """Start every process (the store is migrated already: `account create` does it)."""
        for process in self.processes:
            process.start()

    async def wait_workers(self, deadline: Deadline, limit: float = 60.0) -> None:
        """Until every worker has logged that it runs; bounded by ``limit`` and the deadline."""
        give_up = time.monotonic() + limit
        waiting = list(self.workers)
        while waiting:
            waiting = [w for w in waiting if WORKER_READY not in w.log_text()]
            if not waiting:
                return
            gone = self.exited()
            if gone is not None:
                raise BenchError(f"({self.label}) {gone}")
            deadline.check(f"waiting for ({self.label}) {waiting[0].name} to start")
            if time.monotonic() > give_up:
                raise BenchError(
                    f"({self.label}) {waiting[0].name} did not log {WORKER_READY!r} within {limit:g} s: "
                    f"{waiting[0].log_tail()}"
                )
            await asyncio.sleep(0.05)

    def exited(self) -> str | None:
        """``<process> exited with status N: <its log's tail>`` for the first process that has exited, or None."""
        for process in self.processes:
            status = process.exit_status()
            if status is not None:
                return f"{process.name} exited with status {status}: {process.log_tail()}"
        return None

    def log_tail(self, lines: int = 3) -> str:
        if len(self.processes) == 1:
            return self.processes[0].log_tail(lines)
        tails = [(p.name, p.log_tail(lines)) for p in self.processes]
        return " || ".join(f"{name}: {tail}" for name, tail in tails if tail)

    def cpu_by_process(self) -> dict[str, float | None]:
        return {p.name: cpu_seconds(p.pid) for p in self.processes}

    def log_problems(self) -> list[str]:
        """Lines of the processes' logs at level WARNING or above (or tracebacks), and exits other than a clean
        one, as ``name: line``."""
        problems: list[str] = []
        for process in self.processes:
            status = process.exit_status()
            if status not in (None, 0):
                problems.append(f"{process.name}: exited with status {status} (0 expected after SIGTERM)")
            for line in process.log_text().splitlines():
                if PROBLEM.search(line):
                    problems.append(f"{process.name}: {line.strip()}")
        return problems

    def stop(self) -> None:
        """SIGTERM to every process at once; each gets STOP_GRACE_S to end, then SIGKILL."""
        for process in self.processes:
            process.terminate()
        until = time.monotonic() + STOP_GRACE_S
        for process in self.processes:
            process.wait_or_kill(until)


# ------------------------------------------------------------------------------------------------- databases


async def admin_execute(admin_url: str, statement: str, timeout: float = 60.0) -> None:
    """One statement on a connection of its own through ``admin_url``; bounded."""

    async def go() -> None:
        conn = await asyncpg.connect(admin_url, timeout=10)
        try:
            await conn.execute(statement, timeout=timeout)
        finally:
            await conn.close(timeout=5)

    await asyncio.wait_for(go(), timeout + 20)


async def create_database(children: Children, admin_url: str, label: str) -> tuple[str, str]:
    """A fresh, empty database ``wm_bench_<random>`` on the server of ``admin_url``: (its URL, its name)."""
    name = f"wm_bench_{uuid.uuid4().hex[:12]}"
    children.databases[name] = admin_url  # before CREATE: dropped on exit whatever happens from here
    try:
        await admin_execute(admin_url, f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        raise BenchError(
            f"({label}) cannot create database {name} through {redact(admin_url)}: {type(exc).__name__}: {exc}"
        ) from exc
    return database_url_for(admin_url, name), name


async def drop_database(children: Children, name: str) -> None:
    """Drop a database the bench created (closing any connection left to it); log, not raise, on failure."""
    admin_url = children.databases.get(name)
    if admin_url is None:
        return
    try:
        await admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        log(f"could not drop database {name} through {redact(admin_url)}: {type(exc).__name__}: {exc}")
        return
    del children.databases[name]
    log(f"dropped database {name}")


def drop_databases_now(children: Children) -> None:
    """Drop what is left of the bench's databases, from outside any event loop (a thread of its own); bounded."""

    async def go() -> None:
        for name in list(children.databases):
            await drop_database(children, name)

    def in_thread() -> None:
        with contextlib.suppress(Exception):
            asyncio.run(go())

    thread = threading.Thread(target=in_thread, daemon=True)
    thread.start()
    thread.join(120)
    for name, admin_url in children.databases.items():
        log(f"database {name} may be left on {redact(admin_url)}: drop it with DROP DATABASE {name} WITH (FORCE)")


@dataclass
class Children:
    """Everything the bench started or created, to stop or drop on any exit."""

    services: list[Service] = field(default_factory=list)
    receivers: list[BaseProcess] = field(default_factory=list)
    databases: dict[str, str] = field(default_factory=dict)  # name → admin URL, until dropped

    def stop_all(self) -> None:
        for service in self.services:
            with contextlib.suppress(Exception):
                service.stop()
        for process in self.receivers:
            with contextlib.suppress(Exception):
                receiver.stop(process)
        if self.databases:
            with contextlib.suppress(Exception):
                drop_databases_now(self)


# ------------------------------------------------------------------------------------------------------ HTTP


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


def json_or_text(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw[:200].decode(errors="replace")


class ReceiverClient:
    """The receiver's control endpoints."""

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


class Api:
    """The service's HTTP API as a user sees it."""

    def __init__(self, session: aiohttp.ClientSession, service: Service, deadline: Deadline) -> None:
        self.session = session
        self.service = service
        self.deadline = deadline
        self.base = service.base
        self.headers: dict[str, str] = {}

    async def wait_ready(self, deadline: Deadline, limit: float = 60.0) -> None:
        give_up = time.monotonic() + limit
        while True:
            gone = self.service.exited()
            if gone is not None:
                raise BenchError(f"({self.service.label}) before /readyz answered 200, {gone}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with self.session.get(f"{self.base}/readyz", timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    await resp.read()
                    if resp.status == 200:
                        return
            deadline.check(f"waiting for ({self.service.label}) /readyz")
            if time.monotonic() > give_up:
                raise BenchError(f"({self.service.label}) /readyz did not answer 200 within {limit:g} s")
            await asyncio.sleep(0.05)

    async def login(self, account_error: str | None) -> None:
        form = {"request": "verifyUser", "clientCode": CLIENT_CODE, "username": USERNAME, "password": PASSWORD}
        try:
            async with self.session.post(f"{self.base}/api/", data=form, timeout=self.timeout()) as response:
                raw = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self.failed("POST /api/ verifyUser", exc) from exc
        doc = json_or_text(raw)
        try:
            key = str(doc["records"][0]["sessionKey"])
        except (TypeError, KeyError, IndexError) as exc:
            why = f"; `account create` said: {account_error}" if account_error else ""
            raise BenchError(f"({self.service.label}) verifyUser failed: HTTP {response.status} {doc}{why}") from exc
        self.headers = {"clientCode": CLIENT_CODE, "sessionKey": key, "Content-Type": "application/json"}

    def timeout(self) -> aiohttp.ClientTimeout:
        """Up to 120 s per call, never much past the global deadline."""
        return aiohttp.ClientTimeout(total=max(1.0, min(120.0, self.deadline.remaining() + 1.0)))

    def failed(self, what: str, exc: Exception) -> BenchError:
        why = "no answer in time" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
        exited = self.service.exited()
        gone = f"; {exited}" if exited is not None else ""
        return BenchError(f"({self.service.label}) {what}: {why}{gone}")

    async def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
        url = f"{self.base}{path}"
        try:
            async with self.session.request(
                method, url, data=body, headers=self.headers, timeout=self.timeout()
            ) as response:
                return response.status, json_or_text(await response.read())
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self.failed(f"{method} {path}", exc) from exc

    async def configure(self, endpoint: str) -> None:
        """One configuration (TABLE, ACTION) → endpoint; earlier ones for the same pair are removed (shared store)."""
        status, existing = await self.call("GET", "/v1/webhook-configuration")
        if status != 200 or not isinstance(existing, list):
            raise BenchError(f"({self.service.label}) GET /v1/webhook-configuration: HTTP {status} {existing}")
        for config in existing:
            if config.get("table") == TABLE and config.get("action") == ACTION:
                await self.call("DELETE", f"/v1/webhook-configuration/{config['id']}")
        body = orjson.dumps({"table": TABLE, "action": ACTION, "endpoint": endpoint, "secret": SECRET})
        status, created = await self.call("POST", "/v1/webhook-configuration", body)
        if status != 200:
            raise BenchError(f"({self.service.label}) POST /v1/webhook-configuration: HTTP {status} {created}")

    async def post_events(self, body: bytes, items: int) -> tuple[int, int]:
        """POST /v1/event; (received, recorded), or a BenchError naming what the service answered."""
        try:
            async with self.session.post(
                f"{self.base}/v1/event", data=body, headers=self.headers, timeout=self.timeout()
            ) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self.failed("POST /v1/event", exc) from exc
        if status != 200:
            label = self.service.label
            if status in (404, 405):
                raise BenchError(
                    f"({label}) POST /v1/event answered {status}: this build of webhook-manager does not record "
                    "events yet (CONTRACT.md §5), so there is no pipeline to measure"
                )
            if status == 413:
                raise BenchError(
                    f"({label}) POST /v1/event refused {items} items ({len(body):,} bytes) with 413; "
                    "CONTRACT.md §5 allows up to 10000 items per call"
                )
            raise BenchError(f"({label}) POST /v1/event answered {status}: {json_or_text(raw)}")
        doc = json_or_text(raw)
        try:
            return int(doc["received"]), int(doc["recorded"])
        except (TypeError, KeyError, ValueError) as exc:
            raise BenchError(
                f"({self.service.label}) POST /v1/event: 200 without received/recorded: {doc!r:.200}"
            ) from exc


# ---------------------------------------------------------------------------------------------------- bodies


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


def webhook_body(events: int) -> bytes:
    """A realistic webhook body (CONTRACT.md §6) with ``events`` items."""
    webhook_id = "6284e24920ab9a8b363344dd"
    return orjson.dumps(
        {
            "id": webhook_id,
            "hmac": hmac.new(SECRET.encode(), webhook_id.encode(), hashlib.sha256).hexdigest(),
            "clientCode": CLIENT_CODE,
            "table": TABLE,
            "action": ACTION,
            "eventCount": str(events),
            "items": [{"rowId": 1_000_000 + i, "timestamp": TIMESTAMP, "data": None} for i in range(events)],
        }
    )


def webhook_headers(body: bytes) -> dict[str, str]:
    """The headers a webhook carries (CONTRACT.md §6), so the ceiling's requests have the real size."""
    webhook_id = "6284e24920ab9a8b363344dd"
    stamp = str(int(time.time()))
    mac = hmac.new(SECRET.encode(), f"{webhook_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "User-Agent": "webhook-manager/0.1.0",
        "webhook-id": webhook_id,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


# ----------------------------------------------------------------------------------------------------- parts


@dataclass
class Running:
    service: Service
    api: Api
    sampler: RssSampler


@dataclass
class Context:
    options: Options
    deadline: Deadline
    exe: Path
    workdir: Path
    children: Children
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
            database_url, database = await create_database(ctx.children, opts.database_url, label)
        else:
            database_url = opts.database_url or f"sqlite:///{ctx.workdir / f'wm-{label}.db'}"
        service = Service(label, ctx.exe, database_url, {**settings, **opts.env}, ctx.workdir, opts.workers, ctx.layout)
        ctx.children.services.append(service)
        log(
            f"({label}) starting {ctx.layout} on port {service.port}, store {redact(database_url)},"
            f" {shown or 'default settings'}"
        )
        account_error = service.create_account(ctx.deadline)  # migrates the store first, before any process runs
        service.start()
        api = Api(ctx.session, service, ctx.deadline)
        await api.wait_ready(ctx.deadline)
        await service.wait_workers(ctx.deadline)
        await api.login(account_error)
        await api.configure(ctx.receiver.endpoint)
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
            await drop_database(ctx.children, database)


async def wait_for_events(ctx: Context, running: Running, expected: int, label: str) -> receiver.Stats:
    """Poll the receiver until it has ``expected`` events; bounded by the deadline and the stall limit."""
    stall = ctx.options.stall
    seen = -1
    last_change = time.monotonic()
    next_report = time.monotonic() + 10
    while True:
        stats = await ctx.receiver.stats()
        if stats["events"] >= expected:
            return stats
        now = time.monotonic()
        if stats["events"] != seen:
            seen = stats["events"]
            last_change = now
        elif now - last_change > stall:
            tail = running.service.log_tail()
            raise BenchError(
                f"({label}) delivery stalled: {stats['events']:,} of {expected:,} events received in "
                f"{stats['webhooks']:,} webhooks, none in the last {stall:g} s"
                + (f"; service log: {tail}" if tail else "")
            )
        gone = running.service.exited()
        if gone is not None:
            raise BenchError(f"({label}) {gone}")
        if now >= next_report:
            log(f"({label}) {stats['events']:,} of {expected:,} events received")
            next_report = now + 10
        ctx.deadline.check(f"({label}) waiting for webhooks ({stats['events']:,} of {expected:,} events received)")
        await asyncio.sleep(0.05)


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


async def throughput(ctx: Context, running: Running, total: int, label: str) -> dict[str, Any]:
    """Record ``total`` events as fast as possible; time to the API's last answer and to the last receipt."""
    bodies = ctx.event_bodies(total)
    await ctx.receiver.reset()
    cpu_before = running.service.cpu_by_process()
    log(f"({label}) recording {total:,} events in {len(bodies):,} calls with {ctx.options.clients} clients")
    t0 = time.time()
    received, recorded = await record_all(ctx, running, bodies, label)
    recorded_at = time.time()
    if recorded == 0:
        raise BenchError(
            f"({label}) POST /v1/event recorded none of {received:,} events: the configuration did not match"
        )
    log(f"({label}) recorded {recorded:,} events in {recorded_at - t0:.2f} s; waiting for webhooks")
    stats = await wait_for_events(ctx, running, recorded, label)
    cpu_after = running.service.cpu_by_process()
    await asyncio.sleep(0.2)  # anything beyond the expected count (duplicates) that is still on its way
    final = await ctx.receiver.stats()
    last = stats["last"] or time.time()
    e2e_s = max(last - t0, 1e-9)
    record_s = max(recorded_at - t0, 1e-9)
    cpu: dict[str, float | None] = {
        name: None if before is None or cpu_after.get(name) is None else cast(float, cpu_after[name]) - before
        for name, before in cpu_before.items()
    }
    known = [seconds for seconds in cpu.values() if seconds is not None]
    return {
        "events": total,
        "received": received,
        "recorded": recorded,
        "record_s": record_s,
        "record_events_per_s": recorded / record_s,
        "e2e_s": e2e_s,
        "events_per_s": stats["events"] / e2e_s,
        "webhooks": stats["webhooks"],
        "webhooks_per_s": stats["webhooks"] / e2e_s,
        "events_per_webhook": stats["events"] / stats["webhooks"] if stats["webhooks"] else None,
        "events_received": final["events"],
        "duplicate_webhooks": final["duplicates"],
        "first_webhook_after_s": (stats["first"] - t0) if stats["first"] else None,
        # summed over all of the service's processes (api + workers); None if one of them could not be read
        "service_cpu_s": sum(known) if len(known) == len(cpu) else None,
        "service_cpu_by_process_s": cpu,
    }


def rss_result(running: Running) -> dict[str, Any]:
    sampler = running.sampler
    return {
        "peak_rss_mb": sampler.peak_mb(),
        "vmhwm_mb": (sampler.hwm_kb or 0) / 1024.0,
        "sampled_peak_rss_mb": sampler.peak_sampled_kb / 1024.0,
        "samples": sampler.samples,
        "processes": sampler.processes,
        "vmhwm_reset_after_login": sampler.hwm_reset,
        # peak_rss_mb, vmhwm_mb and sampled_peak_rss_mb are sums over these processes (and their children)
        "service_processes": running.service.layout,
        "vmhwm_by_process_mb": {
            p.name: None if kb is None else kb / 1024.0
            for p, kb in zip(running.service.processes, sampler.hwm_by_pid, strict=False)
        },
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


async def part_ceiling(ctx: Context) -> None:
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


def ceiling_of(ctx: Context, events: int, key: str) -> float | None:
    ceiling = ctx.results.get("e", {}).get(f"body_{events}")
    return None if ceiling is None else float(ceiling[key])


def ratio(value: float, ceiling: float | None) -> str:
    return "" if not ceiling else f"  ({value / ceiling:.2f} of the raw ceiling)"


def print_throughput(ctx: Context, label: str, result: dict[str, Any]) -> None:
    ceiling_events = ceiling_of(ctx, 100, "events_per_s")
    if result["recorded"] != result["received"]:
        out(f"({label}) warning: {result['recorded']:,} of {result['received']:,} events recorded")
    if result["duplicate_webhooks"] or result["events_received"] != result["recorded"]:
        out(
            f"({label}) warning: {result['events_received']:,} events received for {result['recorded']:,} recorded,"
            f" {result['duplicate_webhooks']:,} webhooks with an id seen before"
        )
    out(
        f"({label}) recording alone: {result['recorded']:,} events in {result['record_s']:.2f} s ="
        f" {result['record_events_per_s']:,.0f} events/s accepted by POST /v1/event"
        + ratio(result["record_events_per_s"], ceiling_events)
    )
    cpu = result["service_cpu_s"]
    by_process: dict[str, float | None] = result["service_cpu_by_process_s"]
    summed = ""
    if len(by_process) > 1:
        each = ", ".join(f"{name} {seconds or 0:.1f}" for name, seconds in by_process.items())
        summed = f" (summed over {ctx.layout}: {each})"
    out(
        f"({label}) webhooks: {result['webhooks']:,} ({result['events_per_webhook'] or 0:.1f} events each),"
        f" first after {result['first_webhook_after_s'] or 0:.3f} s"
        + (f", service CPU {cpu:.1f} s{summed} over {result['e2e_s']:.1f} s wall" if cpu is not None else "")
    )


async def part_a(ctx: Context, with_backlog: bool) -> None:
    settings = {"WEBHOOK_MANAGER_BATCH_MAX_EVENTS": "100"}
    async with running_service(ctx, "a", settings) as running:
        result = await throughput(ctx, running, ctx.options.events, "a")
    result["rss"] = rss_result(running)
    ctx.results["a"] = result
    print_throughput(ctx, "a", result)
    target = ctx.targets["a_events_per_s"]
    out(
        f"(a) END-TO-END: {result['recorded']:,} events in {result['e2e_s']:.2f} s = {result['events_per_s']:,.0f}"
        f" events/s   target >= {target:,.0f}  {verdict(result['events_per_s'] >= target)}"
        + ratio(result["events_per_s"], ceiling_of(ctx, 100, "events_per_s"))
    )
    if with_backlog:
        print_backlog(ctx, result, "measured in run (a): the same backlog, recorded as fast as possible")


async def part_b(ctx: Context) -> None:
    settings = {"WEBHOOK_MANAGER_BATCH_MAX_EVENTS": "1"}
    async with running_service(ctx, "b", settings) as running:
        result = await throughput(ctx, running, ctx.options.webhook_events, "b")
    result["rss"] = rss_result(running)
    ctx.results["b"] = result
    print_throughput(ctx, "b", result)
    target = ctx.targets["b_webhooks_per_s"]
    out(
        f"(b) WEBHOOKS/S (1 event each): {result['webhooks']:,} webhooks in {result['e2e_s']:.2f} s ="
        f" {result['webhooks_per_s']:,.0f} webhooks/s   target >= {target:,.0f}"
        f"  {verdict(result['webhooks_per_s'] >= target)}"
        + ratio(result["webhooks_per_s"], ceiling_of(ctx, 1, "requests_per_s"))
    )


async def part_c(ctx: Context) -> None:
    opts = ctx.options
    per_call = opts.latency_call
    interval = per_call / opts.latency_rate
    calls = max(1, round(opts.latency_seconds * opts.latency_rate / per_call))
    async with running_service(ctx, "c", {}) as running:
        await ctx.receiver.reset(latency=True)
        loop = asyncio.get_running_loop()
        in_flight = asyncio.Semaphore(256)
        call_ms: list[float] = []
        totals = [0, 0]

        async def post(body: bytes) -> None:
            try:
                started = time.perf_counter()
                received, recorded = await running.api.post_events(body, per_call)
                call_ms.append((time.perf_counter() - started) * 1000.0)
                totals[0] += received
                totals[1] += recorded
            finally:
                in_flight.release()

        log(f"(c) sending {calls * per_call:,} events at {opts.latency_rate:,}/s in calls of {per_call}")
        pending: set[asyncio.Task[None]] = set()
        failures: list[BaseException] = []

        def finished(task: asyncio.Task[None]) -> None:
            pending.discard(task)
            error = None if task.cancelled() else task.exception()
            if error is not None:
                failures.append(error)

        start = loop.time() + 0.05
        wall_start = time.time()
        try:
            for k in range(calls):
                delay = start + k * interval - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if failures:
                    raise failures[0]
                ctx.deadline.check("(c) sending at a steady rate")
                await in_flight.acquire()
                sent_at = time.time()
                items = [
                    {"rowId": k * per_call + i + 1, "timestamp": TIMESTAMP, "data": {"t": sent_at}}
                    for i in range(per_call)
                ]
                task = asyncio.create_task(post(orjson.dumps({"table": TABLE, "action": ACTION, "items": items})))
                pending.add(task)
                task.add_done_callback(finished)
            while pending and not failures:
                ctx.deadline.check("(c) waiting for the last calls")
                await asyncio.wait(set(pending), timeout=1.0)
            if failures:
                raise failures[0]
        finally:
            for task in list(pending):
                task.cancel()
        send_s = time.time() - wall_start
        if totals[1] == 0:
            raise BenchError("(c) POST /v1/event recorded none of the events: the configuration did not match")
        stats = await wait_for_events(ctx, running, totals[1], "c")
    latency = stats["latency"]
    call_ms.sort()
    result: dict[str, Any] = {
        "events": totals[1],
        "send_s": send_s,
        "achieved_rate": totals[0] / send_s,
        "webhooks": stats["webhooks"],
        "events_per_webhook": stats["events"] / stats["webhooks"] if stats["webhooks"] else None,
        "p50_ms": latency["p50"],
        "p90_ms": latency["p90"],
        "p99_ms": latency["p99"],
        "max_ms": latency["max"],
        "mean_ms": latency["mean"],
        "samples": latency["count"],
        "call_p50_ms": receiver.percentile(call_ms, 50),
        "call_p99_ms": receiver.percentile(call_ms, 99),
        "rss": rss_result(running),
    }
    ctx.results["c"] = result
    p50, p99 = result["p50_ms"], result["p99_ms"]
    targets = ctx.targets
    out(
        f"(c) steady load: {result['events']:,} events at {result['achieved_rate']:,.0f}/s"
        f" (asked {opts.latency_rate:,}/s) in {result['webhooks']:,} webhooks"
        f" ({result['events_per_webhook'] or 0:.1f} events each); POST /v1/event p50"
        f" {result['call_p50_ms'] or 0:.1f} ms, p99 {result['call_p99_ms'] or 0:.1f} ms"
    )
    out(
        f"(c) LATENCY record→receipt: p50 {p50 or 0:.1f} ms (target <= {targets['c_p50_ms']:.0f}"
        f" {verdict(None if p50 is None else p50 <= targets['c_p50_ms'])}), p99 {p99 or 0:.1f} ms (target <="
        f" {targets['c_p99_ms']:.0f} {verdict(None if p99 is None else p99 <= targets['c_p99_ms'])}),"
        f" p90 {result['p90_ms'] or 0:.1f} ms, max {result['max_ms'] or 0:.1f} ms, {result['samples']:,} samples"
    )


def print_backlog(ctx: Context, result: dict[str, Any], how: str) -> None:
    rss = result["rss"]
    ctx.results["d"] = {
        "events": result["recorded"],
        "how": how,
        "e2e_s": result["e2e_s"],
        "events_per_s": result["events_per_s"],
        **rss,
    }
    target = ctx.targets["d_peak_rss_mb"]
    hwm_by_process: dict[str, float | None] = rss["vmhwm_by_process_mb"]
    summed = each = ""
    if len(hwm_by_process) > 1:
        summed = f" summed over {rss['service_processes']}"
        each = " (" + ", ".join(f"{name} {mb or 0:,.1f}" for name, mb in hwm_by_process.items()) + ": each one's peak)"
    out(
        f"(d) PEAK RSS draining {result['recorded']:,} events: {rss['peak_rss_mb']:,.1f} MB{summed}"
        f"   target <= {target:.0f} MB  {verdict(rss['peak_rss_mb'] <= target)}   [VmHWM {rss['vmhwm_mb']:,.1f} MB"
        + each
        + (" since login" if rss["vmhwm_reset_after_login"] else " since start (could not reset it; not used)")
        + f", max sampled VmRSS"
        f" {rss['sampled_peak_rss_mb']:,.1f} MB over {rss['samples']:,} samples, {rss['processes']} process(es);"
        f" {how}]"
    )


async def part_d(ctx: Context) -> None:
    async with running_service(ctx, "d", {}) as running:
        result = await throughput(ctx, running, ctx.options.backlog_events, "d")
    result["rss"] = rss_result(running)
    print_backlog(ctx, result, "a run of its own, default settings")


def print_summary(ctx: Context, error: str | None) -> None:
    results = ctx.results
    targets = ctx.targets
    summary: dict[str, Any] = {
        "quick": ctx.options.quick,
        "service": ctx.layout,
        "store": "postgresql" if is_postgres(ctx.options.database_url) else "sqlite",
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
    out(orjson.dumps(summary).decode())


# ------------------------------------------------------------------------------------------------------ main


def print_header(ctx: Context) -> None:
    """What runs where, and the targets the figures are held to."""
    opts, targets = ctx.options, ctx.targets
    if opts.workers is not None:
        assert opts.database_url is not None
        where = f"a fresh database per part on {redact(database_url_for(opts.database_url, '')).rstrip('/')}"
    elif is_postgres(opts.database_url):
        where = f"the one database {redact(opts.database_url or '')}, shared by the parts"
    elif opts.database_url:
        where = f"the one store {opts.database_url}, shared by the parts"
    else:
        where = "a fresh SQLite file per part"
    if is_postgres(opts.database_url):
        whose = f"the issue's for PostgreSQL, stated for 1 api + {TARGET_WORKERS} workers"
        if opts.workers != TARGET_WORKERS:
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


async def run(options: Options, children: Children, workdir: Path) -> str | None:
    """All parts; the error's one line, or None."""
    deadline = Deadline(options.timeout)
    exe = Path(sys.executable).parent / "webhook-manager"
    log(f"starting the receiver; deadline {options.timeout:g} s" + (" (quick: counts / 10)" if options.quick else ""))
    process, port = receiver.start()
    children.receivers.append(process)
    timeout = aiohttp.ClientTimeout(total=120)
    connector = aiohttp.TCPConnector(limit=max(16, options.clients * 2))
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        ctx = Context(
            options,
            deadline,
            exe,
            workdir,
            children,
            session,
            ReceiverClient(session, port, process.pid or 0),
            targets_for(options),
            layout_of(options),
        )
        print_header(ctx)
        error: str | None = None
        try:
            if not exe.exists() and any(p in options.parts for p in "abcd"):
                raise BenchError(f"{exe} does not exist: run the bench with the project's .venv/bin/python")
            backlog_in_a = (
                "a" in options.parts
                and "d" in options.parts
                and not options.separate_backlog
                and options.backlog_events == options.events
            )
            for part in ("e", "a", "b", "c", "d"):
                if part not in options.parts or (part == "d" and backlog_in_a):
                    continue
                if part == "e":
                    await part_ceiling(ctx)
                elif part == "a":
                    await part_a(ctx, backlog_in_a)
                elif part == "b":
                    await part_b(ctx)
                elif part == "c":
                    await part_c(ctx)
                else:
                    await part_d(ctx)
        except BenchError as exc:
            error = str(exc)
        except asyncio.CancelledError:
            error = "interrupted"
        print_summary(ctx, error)
        return error


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    children = Children()
    workdir = Path(tempfile.mkdtemp(prefix="wm-bench-"))
    error: str | None = "interrupted"

    async def guarded() -> str | None:
        task = asyncio.current_task()
        assert task is not None
        cancel: Callable[[], Any] = task.cancel
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, cancel)
        return await run(options, children, workdir)

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # Outside the event loop (whose own handler cancels the run), SIGTERM unwinds like Ctrl-C, into the cleanup.
    signal.signal(signal.SIGTERM, interrupt)
    try:
        error = uvloop.run(guarded())
    except KeyboardInterrupt:
        error = "interrupted"
    finally:
        # The cleanup is bounded (STOP_GRACE_S per service, timeouts on the database drops): let it finish.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        children.stop_all()
        if options.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if error:
        print(f"FAILED: {error}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
