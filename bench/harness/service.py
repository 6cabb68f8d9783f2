"""The service under test: the ``webhook-manager`` command installed beside the Python that runs the bench.

- :func:`base_env`: the bench's environment without any inherited ``WEBHOOK_MANAGER_*`` setting;
- :func:`create_account`: the bench's client and user on a store (``webhook-manager account create``, which also
  migrates the store);
- :class:`Service`: one ``webhook-manager serve`` on a port of its own, or one ``api`` plus N ``worker`` processes,
  each with a log file; :func:`wait_ready` waits for its ``/readyz``;
- :func:`capture_command` and :func:`capture_section`: ``webhook-manager capture …`` for a change-capture source,
  as a command line or as serve's ``[[capture]]`` section.

The HTTP API as a user sees it (login, configurations, events) is :class:`bench.harness.api.Api`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import aiohttp

from bench.harness.limits import BenchError, Deadline
from bench.harness.processes import ChildProcess, cpu_seconds, free_port, output_tail, run_command, stop_all

HOST = "127.0.0.1"
CLIENT_CODE = "100"
USERNAME = "bench"
PASSWORD = "bench-password-0123456789"
SECRET = "mySecretWord"
TABLE = "product"
WORKER_READY = "webhook-manager worker running"  # logged (level info) by `webhook-manager worker` once it runs


def webhook_manager_exe() -> Path:
    return Path(sys.executable).parent / "webhook-manager"


def base_env(settings: dict[str, str] | None = None) -> dict[str, str]:
    """The bench's environment without inherited ``WEBHOOK_MANAGER_*`` settings, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOK_MANAGER_")}
    env.update(settings or {})
    return env


def create_account(exe: Path, env: dict[str, str], deadline: Deadline, label: str) -> str | None:
    """Create the bench's client and user on the store ``env`` names; the error's last line when that failed (e.g.
    the user exists already)."""
    command = [str(exe), "account", "create", "--client-code", CLIENT_CODE, "--username", USERNAME]
    what = f"({label}) `webhook-manager account create`"
    done = run_command([*command, "--password-stdin"], env, deadline, what, stdin=PASSWORD + "\n", limit=120.0)
    return None if done.returncode == 0 else output_tail(done)


class Service:
    """The service of one part on its own port and store: one ``webhook-manager serve``, or (``workers`` given)
    one ``webhook-manager api`` plus ``workers`` × ``webhook-manager worker``. ``args``: more arguments for serve
    or api (``--config FILE``, say)."""

    def __init__(
        self,
        label: str,
        exe: Path,
        database_url: str,
        settings: dict[str, str],
        workdir: Path,
        workers: int | None = None,
        layout: str = "1 serve",
        args: tuple[str, ...] = (),
    ) -> None:
        self.label = label
        self.exe = exe
        self.layout = layout
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.env = base_env(
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
        command = [str(exe), http, *args, "--port", str(self.port), "--allow-private-endpoints"]
        command.append("--no-bootstrap-account")
        name = label.replace(" ", "-")
        log_name = f"service-{name}.log" if workers is None else f"service-{name}-api.log"
        self.processes = [ChildProcess(http, command, self.env, workdir / log_name, WORKER_READY)]
        # A worker says it runs only at level info; debug stays debug.
        level = "debug" if self.env["WEBHOOK_MANAGER_LOG_LEVEL"].lower() == "debug" else "info"
        worker_env = {**self.env, "WEBHOOK_MANAGER_LOG_LEVEL": level}
        for n in range(1, (workers or 0) + 1):
            worker = [str(exe), "worker", "--allow-private-endpoints"]
            log_path = workdir / f"service-{name}-worker-{n}.log"
            self.processes.append(ChildProcess(f"worker-{n}", worker, worker_env, log_path, WORKER_READY))

    @property
    def workers(self) -> list[ChildProcess]:
        return self.processes[1:]

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def create_account(self, deadline: Deadline) -> str | None:
        """Create client and user (migrating the store); the error's last line when that failed."""
        return create_account(self.exe, self.env, deadline, self.label)

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
            gone = process.exited()
            if gone is not None:
                return gone
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
            problems.extend(f"{process.name}: {line}" for line in process.problems())
        return problems

    def stop(self) -> None:
        """SIGTERM to every process at once; each gets STOP_GRACE_S to end, then SIGKILL."""
        stop_all(self.processes)


async def wait_ready(service: Service, deadline: Deadline, limit: float = 60.0) -> None:
    """Until the service's ``GET /readyz`` answers 200; bounded by ``limit`` and the deadline."""
    give_up = time.monotonic() + limit
    async with aiohttp.ClientSession() as session:
        while True:
            gone = service.exited()
            if gone is not None:
                raise BenchError(f"({service.label}) before /readyz answered 200, {gone}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(f"{service.base}/readyz", timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    await resp.read()
                    if resp.status == 200:
                        return
            deadline.check(f"waiting for ({service.label}) /readyz")
            if time.monotonic() > give_up:
                raise BenchError(
                    f"({service.label}) /readyz did not answer 200 within {limit:g} s: {service.log_tail()}"
                )
            await asyncio.sleep(0.05)


# ------------------------------------------------------------------------------------------- change capture


def _postgres_mode(source: str) -> str:
    return "logical" if source == "postgres-logical" else "trigger"


def capture_command(exe: Path, source: str, app_url: str, slot: str) -> list[str]:
    """``webhook-manager capture …`` of TABLE for a source (``sqlite``, ``postgres-logical``, ``postgres-trigger``,
    ``mysql``) on the application database ``app_url`` (a file for sqlite), without --setup."""
    common = ["--client-code", CLIENT_CODE, "--tables", TABLE]
    if source == "sqlite":
        return [str(exe), "capture", "sqlite", "--database", app_url, *common]
    if source == "mysql":
        return [str(exe), "capture", "mysql", "--dsn", app_url, *common]
    return [
        str(exe),
        "capture",
        "postgres",
        "--dsn",
        app_url,
        *common,
        "--mode",
        _postgres_mode(source),
        "--slot",
        slot,
    ]


def capture_section(source: str, app_url: str, slot: str) -> str:
    """The ``[[capture]]`` section of serve's TOML for the source (strings as JSON, which TOML reads alike)."""
    lines = ["[[capture]]"]
    if source == "sqlite":
        lines += ['kind = "sqlite"', f"database = {json.dumps(app_url)}"]
    elif source == "mysql":
        lines += ['kind = "mysql"', f"dsn = {json.dumps(app_url)}"]
    else:
        mode = _postgres_mode(source)
        lines += ['kind = "postgres"', f"dsn = {json.dumps(app_url)}", f'mode = "{mode}"', f'slot = "{slot}"']
    lines += [f'client_code = "{CLIENT_CODE}"', f'tables = ["{TABLE}"]', 'data = "none"']
    return "\n".join(lines) + "\n"
