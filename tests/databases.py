"""Test databases: a PostgreSQL template built once per run and cloned for each test (README.md, Tests)."""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import pytest

from tests.conftest import IN_CI
from webhook_manager.store import open_store

POSTGRES_URL = os.environ.get("WEBHOOK_MANAGER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# One per test run, so runs at once (two checkouts, a helper's run) never drop each other's template.
TEMPLATE = f"wm_test_template_{os.getpid()}"


def in_thread(coro: Any) -> Any:
    """Run a coroutine on a loop of its own, whatever loop the caller is in."""
    result: list[Any] = []
    error: list[BaseException] = []

    def go() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:  # handed back to the caller
            error.append(exc)

    thread = threading.Thread(target=go)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0] if result else None


def database_url(name: str) -> str:
    base, _, _ = POSTGRES_URL.rpartition("/")
    return f"{base}/{name}"


async def _admin(*statements: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def _build_template() -> None:
    await _admin(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)", f"CREATE DATABASE {TEMPLATE}")
    store = await open_store(database_url(TEMPLATE))
    try:
        await store.migrate()
    finally:
        await store.close()


_template_ready = False


@contextmanager
def postgres_database(*, migrated: bool = True) -> Iterator[str]:
    """A fresh database, migrated (cloned from the template) or empty, for the block; dropped on leaving it,
    also when the test fails. Skips (fails under CI=true) when the server cannot be reached."""
    global _template_ready
    if not _template_ready:
        try:
            in_thread(_build_template())
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            message = f"PostgreSQL at {POSTGRES_URL} cannot be reached: {exc}"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
        _template_ready = True
        atexit.register(lambda: in_thread(_admin(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")))
    name = f"wm_test_{uuid.uuid4().hex[:12]}"
    in_thread(_admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE if migrated else 'template0'}"))
    try:
        yield database_url(name)
    finally:
        in_thread(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
