"""Running the installed ``webhook-manager`` command as a user does."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.waiting import wait_until

COMMAND = str(Path(sys.executable).parent / "webhook-manager")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wm(
    workdir: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *args],
        cwd=workdir,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=None if env is None else {**os.environ, **env},
    )


PASSWORD = "a long enough password"


def account_create(
    workdir: Path,
    client_code: str = "100",
    username: str = "alice",
    password: str = PASSWORD,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``webhook-manager account create … --password-stdin``, the password on standard input."""
    return wm(
        workdir,
        "account",
        "create",
        "--client-code",
        client_code,
        "--username",
        username,
        "--password-stdin",
        stdin=password,
        env=env,
    )


class Served:
    def __init__(self, process: subprocess.Popen[str], url: str, banner: list[str]) -> None:
        self.process, self.url, self.banner = process, url, banner

    def next_line(self, wanted: Callable[[str], bool], timeout: float = 10.0) -> str:
        """The next line the process writes to standard output that ``wanted`` accepts (within ``timeout``)."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.process.stdout], [], [], left)
            if ready:
                line = self.process.stdout.readline()
                if not line:
                    break
                if wanted(line):
                    return line
        pytest.fail(f"no such line on standard output within {timeout} s")


@contextmanager
def serve(workdir: Path, *args: str, env: dict[str, str] | None = None, command: str = "serve") -> Iterator[Served]:
    """``webhook-manager serve`` (or ``api``) on a free port, for the block; killed on leaving it unless it
    has exited already, also when the test fails. Its log goes to a file in ``workdir``, so a chatty process
    never blocks on a full pipe."""
    port = free_port()
    log = (workdir / f"{command}-{port}.log").open("w")
    process = subprocess.Popen(
        [COMMAND, command, "--port", str(port), *args],
        cwd=workdir,
        env=None if env is None else {**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        banner: list[str] = []
        deadline = time.monotonic() + 30
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            banner.append(line)
            if "listening on" in line:
                break
        if not banner or "listening on" not in banner[-1]:
            pytest.fail(f"{command} did not start: {banner} {(workdir / log.name).read_text()}")
        yield Served(process, f"http://127.0.0.1:{port}", banner)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
        log.close()


@contextmanager
def start_worker(workdir: Path, env: dict[str, str], *args: str) -> Iterator[subprocess.Popen[str]]:
    """``webhook-manager worker``, started and running (its log in ``workdir``), for the block; killed on
    leaving it unless it has exited already, also when the test fails."""
    log_path = workdir / f"worker-{time.monotonic_ns()}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [COMMAND, "worker", *args], cwd=workdir, env={**os.environ, **env}, stdout=log, stderr=log, text=True
        )
    try:

        def running() -> bool:
            if process.poll() is not None:
                pytest.fail(f"worker exited with {process.returncode}: {log_path.read_text()}")
            return "worker running" in log_path.read_text()

        wait_until(running, timeout=30, what=lambda: f"the worker to start: {log_path.read_text()}")
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
