"""Processes the benches start and watch: child processes with a log file each, their descendants, CPU time and
resident memory, and one-shot commands.

Every child is started in a session of its own with :func:`die_with_parent`, so it gets SIGTERM even when the bench
is killed with SIGKILL; :func:`stop_all` sends SIGTERM to a group at once and gives each ``STOP_GRACE_S`` to end
before SIGKILL. Nothing here reads another user's secrets: /proc/<pid>/stat and status are world-readable.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import cast

from bench.harness.limits import BenchError, Deadline
from bench.harness.report import log

PROBLEM = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|^Traceback")  # a log line worth reporting
STOP_GRACE_S = 15.0  # how long a process gets to stop after SIGTERM


def die_with_parent() -> None:
    """In a child before exec: get SIGTERM when the bench dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (any user's: /proc/<pid>/stat is world-readable)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def cpu_sum(pids: list[int]) -> float | None:
    """CPU seconds summed over processes; None when there are none or one of them cannot be read."""
    values = [cpu_seconds(pid) for pid in pids]
    return None if not pids or any(v is None for v in values) else sum(cast(list[float], values))


def busy(before: float | None, after: float | None, elapsed: float) -> float | None:
    """Share of one core a process used between two cpu_seconds() readings."""
    return None if before is None or after is None or elapsed <= 0 else (after - before) / elapsed


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


class ChildProcess:
    """A process of the bench (``webhook-manager serve``, ``worker``, ``capture`` …), its output in a log file of
    its own. ``quiet``: a text whose lines log tails leave out (a readiness line, say)."""

    def __init__(
        self, name: str, command: list[str], env: dict[str, str], log_path: Path, quiet: str | None = None
    ) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.log_path = log_path
        self.quiet = quiet
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

    def exited(self) -> str | None:
        """``<name> exited with status N: <its log's tail>`` once it has exited, else None."""
        status = self.exit_status()
        return None if status is None else f"{self.name} exited with status {status}: {self.log_tail()}"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 3) -> str:
        """The log's last lines, joined with `` | ``."""
        text = [line.strip() for line in self.log_text().strip().splitlines()]
        text = [line for line in text if line and (self.quiet is None or self.quiet not in line)]
        return " | ".join(text[-lines:])

    def problems(self) -> list[str]:
        """The log's lines at level WARNING or above, and tracebacks."""
        return [line.strip() for line in self.log_text().splitlines() if PROBLEM.search(line)]

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
            log(f"{self.name}: no exit {STOP_GRACE_S:g} s after SIGTERM; killing it")
            process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)

    def stop(self) -> None:
        """SIGTERM, STOP_GRACE_S to end, then SIGKILL."""
        stop_all([self])


def stop_all(processes: Iterable[ChildProcess]) -> None:
    """SIGTERM to every process at once; each gets STOP_GRACE_S to end, then SIGKILL."""
    processes = list(processes)
    for process in processes:
        process.terminate()
    until = time.monotonic() + STOP_GRACE_S
    for process in processes:
        process.wait_or_kill(until)


def run_command(
    command: list[str], env: dict[str, str], deadline: Deadline, what: str, stdin: str = "", limit: float = 300.0
) -> subprocess.CompletedProcess[bytes]:
    """Run a command to its end (at most ``limit`` seconds, bounded by the deadline); ``what`` names it in errors."""
    try:
        return subprocess.run(
            command,
            input=stdin.encode(),
            env=env,
            capture_output=True,
            timeout=deadline.bounded(limit),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{what} took over {exc.timeout:g} s") from exc


def output_tail(done: subprocess.CompletedProcess[bytes]) -> str:
    """The last line a finished command wrote (its exit status when it wrote nothing)."""
    lines = (done.stderr + done.stdout).decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else f"exit status {done.returncode}"


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
