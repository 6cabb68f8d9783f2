"""The ``webhook-manager`` command (docs/commands.md): flags → settings → :mod:`webhook_manager.service`.

Nothing here opens a store or starts a loop; it reads the settings, says what happens, and turns a
:class:`~webhook_manager.domain.errors.WebhookManagerError` into one line on standard error.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from webhook_manager import __version__, service
from webhook_manager.domain.errors import WebhookManagerError
from webhook_manager.domain.model import User
from webhook_manager.settings import Settings, SettingsError

T = TypeVar("T")

app = typer.Typer(
    name="webhook-manager",
    help="Database changes in, batched and signed webhooks out (Erply-compatible).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
account_app = typer.Typer(help="Manage clients and their users.", no_args_is_help=True)
app.add_typer(account_app, name="account")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="TOML settings file (environment variables WEBHOOK_MANAGER_* win over it)."),
]


def fail(message: str, code: int = 2) -> NoReturn:
    """Stop with one line on standard error."""
    typer.echo(f"webhook-manager: error: {message}", err=True)
    raise typer.Exit(code)


def load_settings(config: Path | None, **overrides: Any) -> Settings:
    """The settings, or a one-line error naming the bad one."""
    try:
        return Settings.load(config, **overrides)
    except SettingsError as exc:
        fail(str(exc))


def _setup_logging(settings: Settings) -> None:
    from webhook_manager.observability.logs import configure

    configure(settings.log_level, settings.log_format, sys.stderr)


def _run(coro: Coroutine[Any, Any, T], *, uvloop: bool = False) -> T:
    """Run a command's coroutine (on uvloop for the long-running ones); its errors end as one line."""
    try:
        if uvloop:
            import uvloop as loop

            return loop.run(coro)
        return asyncio.run(coro)
    except WebhookManagerError as exc:
        fail(exc.message, 1)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@app.command()
def migrate(config: ConfigOption = None) -> None:
    """Bring the store's schema up to date (serve does it too)."""
    applied = _run(service.migrate(load_settings(config)))
    typer.echo(f"applied migrations {applied}" if applied else "schema is up to date")


@account_app.command("create")
def account_create(
    client_code: Annotated[str, typer.Option("--client-code", help="The client (account) code, e.g. 100.")],
    username: Annotated[str, typer.Option("--username", help="The user's login name.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Create a client (if new) and a user of it."""
    settings = load_settings(config)
    if password_stdin:
        password = sys.stdin.read().removesuffix("\n").removesuffix("\r")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    _run(service.create_account(settings, client_code, username, password))
    typer.echo(f"created user {username!r} of client {client_code!r}")


HostOption = Annotated[str | None, typer.Option(help="Listen address (WEBHOOK_MANAGER_HOST).")]
PortOption = Annotated[int | None, typer.Option(help="Listen port (WEBHOOK_MANAGER_PORT).")]
AllowPrivateOption = Annotated[
    bool | None,
    typer.Option(
        "--allow-private-endpoints",
        help="Allow endpoints on loopback and private addresses (WEBHOOK_MANAGER_ALLOW_PRIVATE_ENDPOINTS).",
    ),
]


class LogFormat(StrEnum):
    """The values of ``--log-format`` (the setting ``log_format``)."""

    text = "text"
    json = "json"


LogFormatOption = Annotated[
    LogFormat | None,
    typer.Option(
        "--log-format",
        help="How log lines look on standard error: text, or json (one object per line) (WEBHOOK_MANAGER_LOG_FORMAT).",
    ),
]
BootstrapOption = Annotated[
    bool,
    typer.Option(
        "--bootstrap-account/--no-bootstrap-account",
        help="When the store has no user, create client 100 / admin and print its password.",
    ),
]


def _serve_http(settings: Settings, *, run_pipeline: bool, bootstrap_account: bool) -> None:
    _setup_logging(settings)

    def bootstrapped(user: User, password: str) -> None:
        base = service.base_url(settings.host, settings.port)
        typer.echo(
            "No user existed, so one was created; the password is shown only now:\n"
            f"  clientCode {user.client_code}  username {user.username}  password {password}\n"
            f"  curl -s {base}/api/ -d request=verifyUser -d clientCode={user.client_code}"
            f" -d username={user.username} -d password={password}"
        )

    def listening(base: str) -> None:
        typer.echo(f"webhook-manager {__version__} listening on {base} (API docs: {base}/api/docs)")

    _run(
        service.serve(
            settings,
            pipeline=run_pipeline,
            bootstrap_account=bootstrap_account,
            on_bootstrap=bootstrapped,
            on_listening=listening,
        ),
        uvloop=True,
    )


def _http_settings(
    config: Path | None, host: str | None, port: int | None, allow_private: bool | None, log_format: LogFormat | None
) -> Settings:
    """The settings of ``serve`` and ``api`` with their flags (a flag not given leaves the setting as it is)."""
    return load_settings(
        config,
        host=host,
        port=port,
        allow_private_endpoints=allow_private or None,
        log_format=log_format and log_format.value,
    )


@app.command()
def serve(
    config: ConfigOption = None,
    host: HostOption = None,
    port: PortOption = None,
    allow_private_endpoints: AllowPrivateOption = None,
    bootstrap_account: BootstrapOption = True,
    log_format: LogFormatOption = None,
) -> None:
    """Run the API and the pipeline in one process (the embedded default)."""
    settings = _http_settings(config, host, port, allow_private_endpoints, log_format)
    _serve_http(settings, run_pipeline=True, bootstrap_account=bootstrap_account)


@app.command()
def api(
    config: ConfigOption = None,
    host: HostOption = None,
    port: PortOption = None,
    allow_private_endpoints: AllowPrivateOption = None,
    bootstrap_account: BootstrapOption = True,
    log_format: LogFormatOption = None,
) -> None:
    """Run only the HTTP API; `worker` processes form and send the webhooks (for PostgreSQL)."""
    settings = _http_settings(config, host, port, allow_private_endpoints, log_format)
    _serve_http(settings, run_pipeline=False, bootstrap_account=bootstrap_account)


@app.command()
def worker(
    config: ConfigOption = None, allow_private_endpoints: AllowPrivateOption = None, log_format: LogFormatOption = None
) -> None:
    """Run only the pipeline (batcher, dispatcher, purger); run as many as needed on PostgreSQL."""
    settings = load_settings(
        config, allow_private_endpoints=allow_private_endpoints or None, log_format=log_format and log_format.value
    )
    _setup_logging(settings)
    _run(service.work(settings), uvloop=True)


@app.command()
def status(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object, for scripts, not tables.")] = False,
) -> None:
    """Show what waits in the store, how the last hour's tries went per endpoint, the webhooks that failed last
    and how far each capture source got (reads only)."""
    from webhook_manager import status as shown

    report = _run(service.status_report(load_settings(config)))
    (shown.write_json if as_json else shown.write_text)(report)


capture_app = typer.Typer(
    help="Database change capture: inserts, updates and deletes in an application's tables become events.",
    no_args_is_help=True,
)
app.add_typer(capture_app, name="capture")

_CAPTURE_FLAGS = {
    "database": "--database",
    "dsn": "--dsn",
    "client_code": "--client-code",
    "tables": "--tables",
    "data": "--data",
    "row_id_columns": "--row-id-column",
    "mode": "--mode",
    "slot": "--slot",
}
ClientCodeOption = Annotated[str, typer.Option("--client-code", help="The client whose events the changes become.")]
TablesOption = Annotated[str, typer.Option("--tables", help="Tables to watch, comma-separated: product,invoice.")]
DataOption = Annotated[
    str, typer.Option("--data", help="none: data is null (Erply's generic events); row: the row as a JSON object.")
]
RowIdOption = Annotated[
    list[str] | None,
    typer.Option(
        "--row-id-column",
        help="TABLE=COLUMN: the column giving rowId (default: the single integer primary key). Repeatable.",
    ),
]
SetupOption = Annotated[bool, typer.Option("--setup", help="Create what the source needs, then exit.")]
TeardownOption = Annotated[bool, typer.Option("--teardown", help="Remove what --setup created, then exit.")]


def _capture_spec(**fields: Any) -> Any:
    from pydantic import ValidationError

    from webhook_manager.capture.spec import CaptureSpec

    row_id_columns: dict[str, str] = {}
    for pair in fields.pop("row_id_column") or []:
        table, sep, column = pair.partition("=")
        if not sep or not table or not column:
            fail(f"--row-id-column: expected TABLE=COLUMN, got {pair!r}")
        row_id_columns[table.strip()] = column.strip()
    fields["tables"] = tuple(t.strip() for t in fields["tables"].split(",") if t.strip())
    try:
        return CaptureSpec(row_id_columns=row_id_columns, **fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        flag = _CAPTURE_FLAGS.get(str(err["loc"][0]), str(err["loc"][0])) if err["loc"] else ""
        message = err["msg"].removeprefix("Value error, ")
        fail(f"{flag}: {message}" if flag else message)


def _capture(spec: Any, config: Path | None, *, setup: bool, teardown: bool, log_format: LogFormat | None) -> None:
    if setup and teardown:
        fail("--setup and --teardown: give one of them")
    settings = load_settings(config, log_format=log_format and log_format.value)
    _setup_logging(settings)
    if setup or teardown:
        typer.echo(_run(service.prepare_capture(spec, settings, teardown=teardown)))
        return
    _run(service.capture(spec, settings, on_started=typer.echo))


@capture_app.command("sqlite")
def capture_sqlite(
    database: Annotated[str, typer.Option("--database", help="The application's SQLite database file.")],
    client_code: ClientCodeOption,
    tables: TablesOption,
    data: DataOption = "none",
    row_id_column: RowIdOption = None,
    setup: SetupOption = False,
    teardown: TeardownOption = False,
    config: ConfigOption = None,
    log_format: LogFormatOption = None,
) -> None:
    """Capture changes from an SQLite database (triggers and an outbox table in the same file)."""
    spec = _capture_spec(
        kind="sqlite", database=database, client_code=client_code, tables=tables, data=data, row_id_column=row_id_column
    )
    _capture(spec, config, setup=setup, teardown=teardown, log_format=log_format)


@capture_app.command("postgres")
def capture_postgres(
    dsn: Annotated[str, typer.Option("--dsn", help="The application's database: postgresql://user@host:5432/db.")],
    client_code: ClientCodeOption,
    tables: TablesOption,
    data: DataOption = "none",
    row_id_column: RowIdOption = None,
    mode: Annotated[
        str,
        typer.Option(
            "--mode", help="logical: a replication slot (needs wal_level=logical); trigger: triggers and an outbox."
        ),
    ] = "logical",
    slot: Annotated[
        str | None,
        typer.Option(
            "--slot",
            help="Replication slot and publication name (logical), or the capture's schema (trigger); default"
            " webhook_manager_CLIENT.",
        ),
    ] = None,
    setup: SetupOption = False,
    teardown: TeardownOption = False,
    config: ConfigOption = None,
    log_format: LogFormatOption = None,
) -> None:
    """Capture changes from PostgreSQL (logical replication with pgoutput, or triggers)."""
    spec = _capture_spec(
        kind="postgres",
        dsn=dsn,
        client_code=client_code,
        tables=tables,
        data=data,
        row_id_column=row_id_column,
        mode=mode,
        slot=slot,
    )
    _capture(spec, config, setup=setup, teardown=teardown, log_format=log_format)


@capture_app.command("mysql")
def capture_mysql(
    dsn: Annotated[str, typer.Option("--dsn", help="The application's database: mysql://user:password@host:3306/db.")],
    client_code: ClientCodeOption,
    tables: TablesOption,
    data: DataOption = "none",
    row_id_column: RowIdOption = None,
    setup: SetupOption = False,
    teardown: TeardownOption = False,
    config: ConfigOption = None,
    log_format: LogFormatOption = None,
) -> None:
    """Capture changes from MySQL or MariaDB (the row-based binlog; --setup starts it from the binlog's end)."""
    spec = _capture_spec(
        kind="mysql", dsn=dsn, client_code=client_code, tables=tables, data=data, row_id_column=row_id_column
    )
    _capture(spec, config, setup=setup, teardown=teardown, log_format=log_format)


@app.command()
def listen(
    host: Annotated[str, typer.Option("--host", help="Listen address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Listen port.")] = 9000,
    secret: Annotated[
        str | None,
        typer.Option("--secret", help="The configuration's secret: hmac and webhook-signature are checked with it."),
    ] = None,
    status: Annotated[int, typer.Option("--status", help="The HTTP status to answer, 100–599.")] = 200,
    delay: Annotated[
        float, typer.Option("--delay", help="Seconds to wait before answering; over 5 makes a try time out.")
    ] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object a line per webhook.")] = False,
) -> None:
    """Receive webhooks locally and print each, with its signatures checked: an endpoint to try things with."""
    from webhook_manager import listen as receiver

    if not 0 <= port <= 65535:
        fail(f"--port: expected a port from 0 to 65535, got {port}")
    if not 100 <= status <= 599:
        fail(f"--status: expected an HTTP status from 100 to 599, got {status}")
    if not 0 <= delay < float("inf"):
        fail(f"--delay: expected seconds, 0 or more, got {delay}")
    options = receiver.Options(host=host, port=port, secret=secret, status=status, delay=delay, as_json=as_json)
    _run(receiver.listen(options))


def main() -> None:
    """Entry point of the console script."""
    app()
