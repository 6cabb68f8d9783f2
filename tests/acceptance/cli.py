"""Running the installed ``webhook-manager`` command as a user does."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

COMMAND = str(Path(sys.executable).parent / "webhook-manager")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wm(workdir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *args], cwd=workdir, input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


class Served:
    def __init__(self, process: subprocess.Popen[str], url: str, banner: list[str]) -> None:
        self.process, self.url, self.banner = process, url, banner


def serve(workdir: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    port = free_port()
    process = subprocess.Popen(
        [COMMAND, "serve", "--port", str(port), *args],
        cwd=workdir,
        env=None if env is None else {**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    banner: list[str] = []
    try:
        deadline = time.monotonic() + 30
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            banner.append(line)
            if "listening on" in line:
                yield Served(process, f"http://127.0.0.1:{port}", banner)
                return
        pytest.fail(f"serve did not start: {banner} {process.stderr.read() if process.stderr else ''}")
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
