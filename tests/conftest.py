"""Shared fixtures: settings on a real SQLite file, the app served over real HTTP, accounts and logins."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
import uvloop
from argon2 import PasswordHasher

from tests.clock import FakeClock
from webhook_manager import accounts
from webhook_manager.domain.clock import SYSTEM_CLOCK, Clock
from webhook_manager.domain.timefmt import now_ms
from webhook_manager.service import running
from webhook_manager.settings import Settings
from webhook_manager.store import migrated_store

IN_CI = os.environ.get("CI", "").lower() == "true"


def run(coro: Any) -> Any:
    """Run a coroutine to the end from a synchronous test."""
    return asyncio.run(coro)


@pytest.fixture(autouse=True)
def cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process tests hash with argon2id at its smallest cost (the way Django's test settings do);
    the acceptance tests run the installed command, which keeps the real cost."""
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'wm.db'}")


@dataclass
class LiveServer:
    """The service's API (and, with a pipeline, its loops) served by uvicorn on a thread of its own."""

    settings: Settings
    url: str


@contextmanager
def serving(
    settings: Settings, store: Any = None, *, run_pipeline: bool = False, clock: Clock = SYSTEM_CLOCK
) -> Iterator[LiveServer]:
    """The API of ``service.running`` served on a fresh socket while the block runs, as ``serve``
    (``run_pipeline``) or ``api`` do; with ``store``, over that store instead of opening one. Stopped on
    leaving the block, also when the test fails; an error the server thread ended with fails the test."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    started = threading.Event()  # set once uvicorn listens, or the thread has ended
    holder: dict[str, Any] = {}

    class _Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            started.set()

    async def main() -> None:
        async with running(settings, pipeline=run_pipeline, store=store, clock=clock) as service:
            config = uvicorn.Config(service.app(), log_level="warning", lifespan="off")
            holder["server"] = server = _Server(config)
            await server.serve(sockets=[sock])

    def serve() -> None:
        try:
            uvloop.run(main())
        except BaseException as exc:  # handed to the test
            holder["error"] = exc
        finally:
            started.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        if not started.wait(15) or not getattr(holder.get("server"), "started", False):
            raise RuntimeError("the test server did not start") from holder.get("error")
        yield LiveServer(settings, f"http://127.0.0.1:{port}")
    finally:
        if "server" in holder:
            holder["server"].should_exit = True
        thread.join(15)
        sock.close()
    if thread.is_alive():
        raise RuntimeError("the test server did not stop within 15 s")
    if "error" in holder:
        raise RuntimeError("the test server failed") from holder["error"]


def sqlite_file(settings: Settings) -> Path:
    """The SQLite file of a test's store."""
    return Path(settings.database_url.removeprefix("sqlite:///"))


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when the test says (``clock.advance(ms)``); the ``server`` fixture serves on it."""
    return FakeClock()


@pytest.fixture
def server(settings: Settings, clock: FakeClock) -> Iterator[LiveServer]:
    with serving(settings, clock=clock) as live:
        yield live


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def create_account(settings: Settings, client_code: str, username: str, password: str) -> None:
    async def go() -> None:
        async with migrated_store(settings.database_url) as store:
            await accounts.create_account(store, client_code, username, password, now_ms())

    run(go())


def verify_user(http: httpx.Client, client_code: str, username: str, password: str, **extra: Any) -> Any:
    fields = {"request": "verifyUser", "clientCode": client_code, "username": username, "password": password}
    answer = http.post("/api/", data={**fields, **extra})
    assert answer.status_code == 200
    return orjson.loads(answer.content)


@dataclass
class Client:
    """A logged-in client: its code and the headers of its session."""

    code: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"clientCode": self.code, "sessionKey": self.key}


def log_in(http: httpx.Client, code: str, username: str = "alice", password: str = "correct horse battery") -> Client:
    """A user that exists already, logged in with ``verifyUser``."""
    answer = verify_user(http, code, username, password)
    return Client(code, answer["records"][0]["sessionKey"])


@pytest.fixture
def login(settings: Settings, http: httpx.Client) -> Any:
    """``login(code)``: create a user of client ``code`` and return it logged in."""

    def make(code: str, username: str = "alice", password: str = "correct horse battery") -> Client:
        create_account(settings, code, username, password)
        answer = verify_user(http, code, username, password)
        assert answer["status"]["errorCode"] == 0, answer
        return Client(code, answer["records"][0]["sessionKey"])

    return make
