"""A private PostgreSQL server for fault tests: its own data folder and port, started and stopped at will, so a
test can take PostgreSQL away (a real outage: the server is gone, connections are cut and refused) without
touching the server the rest of the suite shares. ``fsync=off``: nothing here outlives the test."""

from __future__ import annotations

import os
import pwd
import random
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import NoReturn

import pytest

from tests.conftest import IN_CI

SETTINGS = (
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "listen_addresses=127.0.0.1",
    "track_commit_timestamp=on",  # so a test can tell when a row was written: pg_xact_commit_timestamp(xmin)
)


def _bin_dir() -> Path | None:
    """The newest installed PostgreSQL's programs (Debian's layout), or those on PATH."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def _port_outside_the_ephemeral_range() -> int:
    """A free port below the range the kernel hands out to outgoing connections and to port-0 listeners, so
    nothing takes it while the server is stopped and it can start again on the same port."""
    low = 32768
    with suppress(OSError, ValueError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(100):
        port = random.randrange(max(1024, low - 12000), low)
        with socket.socket() as s, suppress(OSError):
            s.bind(("127.0.0.1", port))
            return port
    raise AssertionError("no free port for a private PostgreSQL server")


def _unavailable(message: str) -> NoReturn:
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


class PrivatePostgres:
    """One server; :meth:`stop` and :meth:`start` take it down and bring it back on the same port and data."""

    def __init__(self, bin_dir: Path, folder: Path, port: int, user: str | None) -> None:
        self._bin, self._folder, self.port, self._user = bin_dir, folder, port, user
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        self.running = False

    def _run(self, program: str, *args: str) -> None:
        command = [str(self._bin / program), *args]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            log = self._folder / "server.log"
            server_log = log.read_text() if log.exists() else ""
            raise AssertionError(f"{program} {' '.join(args)} failed: {done.stdout}{done.stderr}{server_log}")

    def init(self) -> None:
        self._run(
            "initdb", "-D", str(self._folder / "data"), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"
        )

    def start(self) -> None:
        """Start the server and return once it accepts connections."""
        options = " ".join([f"-p {self.port}", f"-k {self._folder}", *(f"-c {s}" for s in SETTINGS)])
        data, log = str(self._folder / "data"), str(self._folder / "server.log")
        self._run("pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "-t", "30", "start")
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: every session is ended, as in a server restart; ``immediate``: as in a
        crash) and return once it is gone."""
        self._run("pg_ctl", "-D", str(self._folder / "data"), "-m", mode, "-w", "-t", "30", "stop")
        self.running = False


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A fresh PostgreSQL server of our own on a free port, running, for the block; stopped and removed on
    leaving it, also when the test fails. Skips (fails under CI=true) when PostgreSQL is not installed or, as
    root, there is no ``postgres`` user to run it as (initdb refuses root)."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        _unavailable("PostgreSQL's programs (initdb, pg_ctl) are not installed")
    user = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("no postgres user to run a private PostgreSQL server as")
        user = "postgres"
    folder = Path(tempfile.mkdtemp(prefix="wm-private-postgres-"))
    try:
        if user is not None:
            os.chown(folder, owner.pw_uid, owner.pw_gid)
        server = PrivatePostgres(bin_dir, folder, _port_outside_the_ephemeral_range(), user)
        server.init()
        server.start()
        try:
            yield server
        finally:
            if server.running:
                server.stop("immediate")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
