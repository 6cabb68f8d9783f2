"""The ``webhook-manager`` command (docs/commands.md): flags → settings → :mod:`webhook_manager.service`.

Nothing here opens a store or starts a loop; it reads the settings, says what happens, and turns a
:class:`~webhook_manager.domain.errors.WebhookManagerError` into one line on standard error.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Coroutine
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
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


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


@app.command()
def serve(
    config: ConfigOption = None,
    host: HostOption = None,
    port: PortOption = None,
    allow_private_endpoints: AllowPrivateOption = None,
    bootstrap_account: BootstrapOption = True,
) -> None:
    """Run the API and the pipeline in one process (the embedded default)."""
    settings = load_settings(config, host=host, port=port, allow_private_endpoints=allow_private_endpoints or None)
    _serve_http(settings, run_pipeline=True, bootstrap_account=bootstrap_account)


@app.command()
def api(
    config: ConfigOption = None,
    host: HostOption = None,
    port: PortOption = None,
    allow_private_endpoints: AllowPrivateOption = None,
    bootstrap_account: BootstrapOption = True,
) -> None:
    """Run only the HTTP API; `worker` processes form and send the webhooks (for PostgreSQL)."""
    settings = load_settings(config, host=host, port=port, allow_private_endpoints=allow_private_endpoints or None)
    _serve_http(settings, run_pipeline=False, bootstrap_account=bootstrap_account)


@app.command()
def worker(config: ConfigOption = None, allow_private_endpoints: AllowPrivateOption = None) -> None:
    """Run only the pipeline (batcher, dispatcher, purger); run as many as needed on PostgreSQL."""
    settings = load_settings(config, allow_private_endpoints=allow_private_endpoints or None)
    _setup_logging(settings)
    _run(service.work(settings), uvloop=True)


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


def _capture(spec: Any, config: Path | None, *, setup: bool, teardown: bool) -> None:
    if setup and teardown:
        fail("--setup and --teardown: give one of them")
    settings = load_settings(config)
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
) -> None:
    """Capture changes from an SQLite database (triggers and an outbox table in the same file)."""
    spec = _capture_spec(
        kind="sqlite", database=database, client_code=client_code, tables=tables, data=data, row_id_column=row_id_column
    )
    _capture(spec, config, setup=setup, teardown=teardown)


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
    _capture(spec, config, setup=setup, teardown=teardown)


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
) -> None:
    """Capture changes from MySQL or MariaDB (the row-based binlog; --setup starts it from the binlog's end)."""
    spec = _capture_spec(
        kind="mysql", dsn=dsn, client_code=client_code, tables=tables, data=data, row_id_column=row_id_column
    )
    _capture(spec, config, setup=setup, teardown=teardown)


def main() -> None:
    """Entry point of the console script."""
    app()
