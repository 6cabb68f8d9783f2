"""What the parts of bench/capture.py share: the options, a run's :class:`Context`, and per part a fresh
application database (:func:`new_app`), a fresh store with the bench's account (:func:`new_store`), a
configuration written straight into the store (:func:`add_configuration`) and the capture's set-up
(:func:`set_up_capture`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from bench.harness.lifecycle import Run
from bench.harness.limits import BenchError
from bench.harness.processes import output_tail, run_command
from bench.harness.service import CLIENT_CODE, SECRET, TABLE, base_env, capture_command, create_account
from bench.scenarios.capture.apps import App, MysqlApp, PostgresApp, SqliteApp
from webhook_manager.domain.ids import new_id
from webhook_manager.domain.model import Action, Configuration
from webhook_manager.domain.timefmt import now_ms
from webhook_manager.store import migrated_store

SOURCES = ("sqlite", "postgres-logical", "postgres-trigger", "mysql")
APP_PREFIX = "wm_bench_capture_"  # application databases on the PostgreSQL and MySQL servers
STORE_PREFIX = "wm_bench_capture_store_"  # stores on the --database-url server


@dataclass
class Options:
    sources: list[str]
    rows: int
    seconds: float
    rate: int
    per_transaction: int
    database_url: str | None
    postgres_url: str
    mysql_url: str
    timeout: float
    stall: float
    keep: bool
    quick: bool


@dataclass
class Context(Run):
    """A run of bench/capture.py: what every part gets, and the results so far (by source, then part letter)."""

    options: Options
    receiver_port: int = 0
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

    def store_env(self, store_url: str) -> dict[str, str]:
        """The environment of the bench's ``webhook-manager`` commands on a store (but serve's: see Service)."""
        return base_env({"WEBHOOK_MANAGER_LOG_LEVEL": "info", "WEBHOOK_MANAGER_DATABASE_URL": store_url})


def new_app(ctx: Context, source: str, label: str) -> App:
    """A fresh, empty application database for the source: a file in the temporary folder, or a new database."""
    if source == "sqlite":
        return SqliteApp(ctx.workdir / f"app-{label}.db")
    if source == "mysql":
        url, _ = ctx.res.databases.create(ctx.options.mysql_url, APP_PREFIX)
        return MysqlApp(url)
    url, _ = ctx.res.databases.create(ctx.options.postgres_url, APP_PREFIX)
    return PostgresApp(url)


def new_store(ctx: Context, label: str) -> str:
    """A fresh store, migrated, with the bench's client and user (``webhook-manager account create``)."""
    if ctx.options.database_url is None:
        url = f"sqlite:///{ctx.workdir / f'store-{label}.db'}"
    else:
        url, _ = ctx.res.databases.create(ctx.options.database_url, STORE_PREFIX)
    error = create_account(ctx.exe, ctx.store_env(url), ctx.deadline, label)
    if error is not None:
        raise BenchError(f"({label}) `webhook-manager account create` failed: {error}")
    return url


def add_configuration(ctx: Context, store_url: str, action: str, endpoint: str) -> None:
    """A configuration (product, action) → endpoint, straight through the store's API."""

    async def go() -> None:
        async with migrated_store(store_url) as store:
            now = now_ms()
            await store.create_configuration(
                Configuration(new_id(), CLIENT_CODE, TABLE, Action(action), endpoint, SECRET, False, now, now)
            )

    asyncio.run(asyncio.wait_for(go(), timeout=ctx.deadline.bounded(60.0)))


def set_up_capture(ctx: Context, source: str, app: App, slot: str, store_url: str, label: str) -> None:
    """``webhook-manager capture … --setup`` for the source (triggers and outbox, or slot and publication, or
    the binlog position)."""
    command = [*capture_command(ctx.exe, source, app.url, slot), "--setup"]
    done = run_command(command, ctx.store_env(store_url), ctx.deadline, f"({label}) --setup")
    if done.returncode != 0:
        raise BenchError(f"({label}) `webhook-manager capture … --setup` failed: {output_tail(done)}")
