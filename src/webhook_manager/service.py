"""The composition root: the one place that opens the store and builds what a process runs over it (the API,
the pipeline, the capture supervisor), and owns start, signals and stop for every command.

``cli.py`` turns flags into settings and calls one of the functions here; tests use :func:`running` to get
the same process wiring in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from webhook_manager import accounts
from webhook_manager.capture.spec import CaptureSpec
from webhook_manager.capture.supervisor import (
    CaptureSupervisor,
    check_source,
    check_sources,
    one_line_error,
    prepare_source,
    run_capture,
)
from webhook_manager.delivery.notifier import NO_PIPELINE, Notifier
from webhook_manager.domain.clock import SYSTEM_CLOCK, Clock
from webhook_manager.domain.errors import WebhookManagerError
from webhook_manager.domain.model import User
from webhook_manager.identity import IdentityTokens
from webhook_manager.observability.logs import uvicorn_log_config
from webhook_manager.observability.metrics import NO_METRICS, Metrics, metrics_of
from webhook_manager.observability.redaction import SecretsRedacted
from webhook_manager.settings import Settings
from webhook_manager.store import Store, migrated_store, open_store

if TYPE_CHECKING:  # the HTTP side (FastAPI, uvicorn, aiohttp) is imported by the commands that run it
    from aiohttp import web

    from webhook_manager.api.context import ServiceApp
    from webhook_manager.delivery.pipeline import Pipeline

log = logging.getLogger("webhook_manager")

GRACEFUL_SHUTDOWN_S = 10


class ListenError(WebhookManagerError):
    """The API could not listen where the settings say."""


@dataclass
class Service:
    """What one process runs over its store: the API (always built, served by ``serve`` and ``api``), and, in
    ``serve`` and ``worker``, the pipeline and the ``[[capture]]`` sources."""

    settings: Settings
    store: Store
    pipeline: Pipeline | None
    captures: CaptureSupervisor | None
    clock: Clock
    tokens: IdentityTokens
    metrics: Metrics = NO_METRICS

    @property
    def notifier(self) -> Notifier:
        """What the API and capture tell that events were recorded or webhooks made due."""
        return self.pipeline if self.pipeline is not None else NO_PIPELINE

    def app(self) -> ServiceApp:
        """The HTTP API of this process."""
        from webhook_manager.api import create_app

        return create_app(
            self.settings,
            self.store,
            notifier=self.notifier,
            clock=self.clock,
            tokens=self.tokens,
            observed=self.metrics,
        )


@asynccontextmanager
async def running(
    settings: Settings, *, pipeline: bool, store: Store | None = None, clock: Clock = SYSTEM_CLOCK
) -> AsyncIterator[Service]:
    """A started :class:`Service`: the store opened and migrated (unless one is given, which stays open), the
    pipeline and capture started when ``pipeline``; everything stopped on exit, tries in flight logged."""
    from webhook_manager.delivery.pipeline import Pipeline

    if store is None:
        opened = await open_store(settings.database_url, disk_reserve_bytes=_reserve(settings))
    else:
        opened = store
    try:
        if store is None:
            await opened.migrate()
        metrics = metrics_of(settings)
        loops = Pipeline(opened, settings, clock, metrics) if pipeline else None
        captures = None
        if loops is not None and settings.capture:
            captures = CaptureSupervisor(settings.capture, opened, settings.timezone, loops.events_recorded, metrics)
        tokens = await IdentityTokens.of(settings, opened)
        service = Service(settings, opened, loops, captures, clock, tokens, metrics)
        if loops is not None:
            await loops.start()
        try:
            if captures is not None:
                captures.start()
            try:
                yield service
            finally:
                if captures is not None:
                    await _logged(captures.stop(), "stopping capture failed")
        finally:
            if loops is not None:
                # A try whose outcome cannot be written now (the store is gone) is tried again once its lease
                # runs out: said in the log, and the process still ends as asked.
                await _logged(loops.stop(), "stopping the pipeline failed")
    finally:
        if store is None:
            await opened.close()


async def _logged(stopping: Awaitable[None], what: str) -> None:
    try:
        await stopping
    except Exception:
        log.exception(what)


class StopSignals:
    """SIGTERM and SIGINT noted from the first moment of ``serve``, so a stop asked for while it starts ends it
    cleanly once started, rather than killing it half-way.

    While it serves, uvicorn handles them itself (a graceful shutdown), then raises the signal again for the
    handler that was there before: this one, which has nothing left to do, so the pipeline stops and the
    process exits with status 0.
    """

    def __init__(self) -> None:
        self.asked = False
        self.server: Any = None
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._stop)

    def _stop(self, signum: int, frame: object) -> None:
        self.asked = True
        if self.server is not None:  # it came between the server's making and its own handlers
            self.server.should_exit = True


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT, for the commands without an HTTP server."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


# commands


async def migrate(settings: Settings) -> list[int]:
    """``migrate``: bring the schema up to date; the versions applied now."""
    store = await open_store(settings.database_url)
    try:
        return await store.migrate()
    finally:
        await store.close()


async def create_account(settings: Settings, client_code: str, username: str, password: str) -> User:
    """``account create``: a user (and its client when new)."""
    async with migrated_store(settings.database_url) as store:
        return await accounts.create_account(store, client_code, username, password, SYSTEM_CLOCK.now_ms())


def _reserve(settings: Settings) -> int:
    """The free space that new events leave on the SQLite store's disk, in bytes."""
    return int(settings.disk_reserve_mb * 1024 * 1024)


def base_url(host: str, port: int) -> str:
    """``http://host:port``, with an IPv6 host in brackets."""
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


async def serve(
    settings: Settings,
    *,
    pipeline: bool,
    bootstrap_account: bool,
    on_bootstrap: Callable[[User, str], None],
    on_listening: Callable[[str], None],
) -> None:
    """``serve`` (the API with the pipeline) or ``api`` (the API alone), until SIGTERM or SIGINT; then a
    graceful stop (requests answered, tries in flight logged). ``on_bootstrap`` gets the first user and its
    password when the store had none; ``on_listening`` the URL once the socket is bound."""
    import uvicorn

    from webhook_manager.api.http_limits import ConnectionLimits, raise_open_files_limit

    class Server(uvicorn.Server):
        """uvicorn's server, saying where it listens once the socket is bound."""

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                on_listening(base_url(self.config.host, self.config.port))

    signals = StopSignals()
    if pipeline:
        await check_sources(settings.capture)
    async with running(settings, pipeline=pipeline) as service:
        if bootstrap_account:
            created = await accounts.bootstrap_account(service.store, SYSTEM_CLOCK.now_ms())
            if created is not None:
                on_bootstrap(*created)
        raise_open_files_limit(settings)
        limits = ConnectionLimits(settings)  # head size and time, idle and open connections; what they closed
        server = Server(
            uvicorn.Config(
                service.app(),
                host=settings.host,
                port=settings.port,
                http=limits.protocol(),
                timeout_keep_alive=settings.keep_alive_idle_s,
                lifespan="off",
                access_log=settings.access_log,
                log_config=uvicorn_log_config(settings.log_format),  # json: uvicorn's lines as JSON too
                log_level=settings.log_level,
                server_header=False,
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            )
        )
        # uvicorn's access log (when it is on) writes request targets; secrets in a query string are hidden.
        logging.getLogger("uvicorn.access").addFilter(SecretsRedacted())
        signals.server = server
        if signals.asked:
            return  # asked to stop while starting
        try:
            await server.serve()
        except SystemExit:
            server.started = False  # uvicorn exits this way when it cannot bind; it said why
        if not server.started:
            raise ListenError(
                f"could not listen on {settings.host}:{settings.port} (WEBHOOK_MANAGER_HOST, WEBHOOK_MANAGER_PORT)"
            )


async def work(settings: Settings) -> None:
    """``worker``: the pipeline (and ``[[capture]]`` sources) alone until SIGTERM or SIGINT, then a clean stop."""
    stop = _stop_on_signals()
    await check_sources(settings.capture)
    async with running(settings, pipeline=True) as service, _metrics_port(service):
        logging.getLogger("webhook_manager.pipeline").info(
            "webhook-manager worker running on %s", settings.database_url.split("@")[-1]
        )
        await stop.wait()


@asynccontextmanager
async def _metrics_port(service: Service) -> AsyncIterator[None]:
    """``/metrics`` on ``metrics_port`` (at ``host``) while the block runs, when both the port and metrics are
    set: a worker has no API port."""
    settings = service.settings
    if settings.metrics_port is None or not service.metrics.enabled:
        yield
        return
    from aiohttp import web
    from prometheus_client import CONTENT_TYPE_LATEST

    async def scrape(request: web.Request) -> web.Response:
        body = await service.metrics.exposition(service.store, service.clock.now_ms)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    async with serving_site(app, settings.host, settings.metrics_port, "WEBHOOK_MANAGER_METRICS_PORT"):
        logging.getLogger("webhook_manager.metrics").info(
            "metrics at %s/metrics", base_url(settings.host, settings.metrics_port)
        )
        yield


@asynccontextmanager
async def serving_site(app: web.Application, host: str, port: int, named_by: str, **runner: Any) -> AsyncIterator[int]:
    """A small aiohttp ``app`` (``listen``, a worker's ``/metrics``) served on ``host``:``port`` while the block
    runs; yields the port bound (``port`` 0 binds a free one). ListenError in one line when it cannot bind,
    naming the flags or settings that say where (``named_by``). ``runner``: more AppRunner options."""
    from aiohttp import web

    site_runner = web.AppRunner(app, access_log=None, handle_signals=False, **runner)
    await site_runner.setup()
    try:
        try:
            await web.TCPSite(site_runner, host, port).start()
        except OSError as exc:
            raise ListenError(f"cannot listen on {host}:{port} ({named_by}): {bind_failure(exc)}") from None
        yield site_runner.addresses[0][1]
    finally:
        await site_runner.cleanup()


def bind_failure(exc: OSError) -> str:
    """Why a socket could not be bound, in the system's words (asyncio's own message repeats the address)."""
    if isinstance(exc, socket.gaierror) or not exc.errno or exc.errno < 0:
        text = exc.strerror or str(exc)
    else:
        text = os.strerror(exc.errno)
    return text[:1].lower() + text[1:]


async def prepare_capture(spec: CaptureSpec, settings: Settings, *, teardown: bool) -> str:
    """``capture … --setup`` / ``--teardown``: one line saying what was done."""
    return await prepare_source(spec, lambda: migrated_store(settings.database_url), teardown=teardown)


async def capture(spec: CaptureSpec, settings: Settings, on_started: Callable[[str], None]) -> None:
    """``capture …``: one source alone until SIGTERM or SIGINT; one line saying why it cannot start."""
    try:
        await asyncio.to_thread(check_source, spec)
    except WebhookManagerError:
        raise
    except Exception as exc:  # a driver's error
        raise one_line_error(spec, exc) from exc
    async with migrated_store(settings.database_url, disk_reserve_bytes=_reserve(settings)) as store:
        if not await store.list_configurations(spec.client_code):
            logging.getLogger("webhook_manager.capture").warning(
                "client %s has no webhook configurations: changes are dropped until one matches", spec.client_code
            )
        task = asyncio.create_task(run_capture(spec, store, settings.timezone))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        on_started(
            f"capturing {', '.join(spec.tables)} from {spec.describe()} for client {spec.client_code}"
            f" into {settings.database_url.split('@')[-1]}"
        )
        with contextlib.suppress(asyncio.CancelledError):
            await task


if TYPE_CHECKING:
    from webhook_manager.status import StatusReport


async def status_report(settings: Settings) -> StatusReport:
    """``status``: the store's report (:mod:`webhook_manager.status`). It only reads: a store that does not exist
    or has no current schema is not created or migrated, but named in a one-line error."""
    import os

    from webhook_manager import status
    from webhook_manager.store import SQLITE_PREFIX

    url = settings.database_url
    path = url.removeprefix(SQLITE_PREFIX)
    if url.startswith(SQLITE_PREFIX) and not await asyncio.to_thread(os.path.isfile, path):
        raise status.NotMigrated(f"no store at {path} (database_url): run `webhook-manager migrate` to create it")
    store = await open_store(url)
    try:
        return await status.gather(store, url, SYSTEM_CLOCK.now_ms())
    finally:
        await store.close()
