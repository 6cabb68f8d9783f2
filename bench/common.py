"""What the benchmarks share: output, verdicts, time limits, ports, child processes' CPU time."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys
import time
import urllib.parse

STARTED = time.monotonic()


class BenchError(Exception):
    """The bench cannot go on; the message is one line saying why."""


def log(message: str) -> None:
    """Progress, on standard error, with the seconds since the bench started."""
    print(f"# [{time.monotonic() - STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def out(message: str) -> None:
    """A figure, on standard output."""
    print(message, flush=True)


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def redact(url: str) -> str:
    """A URL without its password, for the output."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user.partition(':')[0]}:***@{host}"))


def database_url_for(url: str, name: str) -> str:
    """``url`` with its database replaced by ``name`` (same server, user, password and options)."""
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path=f"/{name}"))


class Deadline:
    """The global time limit; every loop asks it before going on."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def check(self, doing: str) -> None:
        if self.remaining() <= 0:
            raise BenchError(f"the global deadline (--timeout {self.seconds:g} s) passed while {doing}")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def die_with_parent() -> None:
    """In a child before exec: get SIGTERM when the bench dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (any user's: /proc/<pid>/stat is world-readable)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
