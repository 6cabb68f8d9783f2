"""``webhook-manager capture …`` as a user runs it: set-up and teardown, and every misconfiguration stops
with one line saying what to change (docs/capture.md)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg2
import pymysql
import pytest

from tests.acceptance.cli import PASSWORD, account_create, free_port, serve, wm
from tests.capture_apps import AppDb, app_database
from tests.conftest import IN_CI
from tests.receiver import ThreadedReceiver
from tests.waiting import wait_until

PG_BIN = (
    Path("/usr/lib/postgresql")
    / (os.listdir("/usr/lib/postgresql")[0] if Path("/usr/lib/postgresql").is_dir() else "none")
    / "bin"
)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The error a failed command printed: exactly one line on standard error, no traceback."""
    assert result.returncode != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip() and " WARNING " not in line]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("webhook-manager: error: "), result.stderr
    return lines[0].removeprefix("webhook-manager: error: ")


@pytest.fixture
def sqlite_app(tmp_path: Path) -> Iterator[AppDb]:
    with app_database("sqlite", tmp_path) as app:
        app.create_product_table()
        yield app


@pytest.fixture
def pg_app(tmp_path: Path) -> Iterator[AppDb]:
    with app_database("postgres-logical", tmp_path) as app:
        app.create_product_table()
        yield app


def capture(workdir: Path, app: AppDb, *args: str) -> subprocess.CompletedProcess[str]:
    if app.is_postgres:
        where = ["postgres", "--dsn", app.where, "--slot", app.slot]
    else:
        where = ["sqlite", "--database", app.where]
    return wm(workdir, "capture", *where, "--client-code", "100", *args)


def test_sqlite_setup_and_teardown_install_and_remove_the_triggers(workdir: Path, sqlite_app: AppDb) -> None:
    done = capture(workdir, sqlite_app, "--tables", "product,tag", "--setup")
    assert done.returncode == 0, done.stderr
    assert "set up capture of product, tag" in done.stdout
    triggers = sqlite_app.query("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
    assert len(triggers) == 6
    sqlite_app.execute("INSERT INTO product (id, name) VALUES (1, 'a')")
    assert sqlite_app.query("SELECT table_name, action, row_id FROM webhook_manager_outbox") == [
        ("product", "insert", 1)
    ]
    done = capture(workdir, sqlite_app, "--tables", "product,tag", "--teardown")
    assert done.returncode == 0, done.stderr
    assert "1 changes not yet recorded were dropped" in done.stdout
    assert sqlite_app.query("SELECT name FROM sqlite_master WHERE name LIKE 'webhook_manager%'") == []


def test_sqlite_misconfigurations_each_say_what_to_change(workdir: Path, sqlite_app: AppDb) -> None:
    missing = wm(workdir, "capture", "sqlite", "--database", "nope.db", "--client-code", "1", "--tables", "t")
    assert one_line_error(missing) == "database 'nope.db': no such file"
    assert "no table 'nothing'" in one_line_error(capture(workdir, sqlite_app, "--tables", "product,nothing"))
    assert one_line_error(capture(workdir, sqlite_app, "--tables", "product", "--row-id-column", "product=nope")) == (
        "row_id_columns: table 'product' has no column 'nope'"
    )
    assert one_line_error(capture(workdir, sqlite_app, "--tables", "product", "--row-id-column", "x")).startswith(
        "--row-id-column: expected TABLE=COLUMN"
    )
    assert one_line_error(capture(workdir, sqlite_app, "--tables", "a b")).startswith("--tables: ")
    assert one_line_error(capture(workdir, sqlite_app, "--tables", "product", "--data", "all")).startswith("--data: ")
    both = capture(workdir, sqlite_app, "--tables", "product", "--setup", "--teardown")
    assert one_line_error(both) == "--setup and --teardown: give one of them"


@pytest.mark.postgres
def test_postgres_logical_setup_makes_publication_and_slot_and_teardown_removes_them(
    workdir: Path, pg_app: AppDb
) -> None:
    done = capture(workdir, pg_app, "--tables", "product,tag", "--setup")
    assert done.returncode == 0, done.stderr
    assert pg_app.query(f"SELECT plugin FROM pg_replication_slots WHERE slot_name = '{pg_app.slot}'") == [("pgoutput",)]
    published = pg_app.query(f"SELECT tablename FROM pg_publication_tables WHERE pubname = '{pg_app.slot}' ORDER BY 1")
    assert published == [("product",), ("tag",)]
    # another table list than the publication's: running says how to change it, set-up will not take it over
    assert "--teardown, then --setup with these tables" in one_line_error(
        capture(workdir, pg_app, "--tables", "product")
    )
    taken = one_line_error(capture(workdir, pg_app, "--tables", "product", "--setup"))
    assert taken.startswith(f"publication {pg_app.slot!r} publishes public.product, public.tag, not public.product:")
    done = capture(workdir, pg_app, "--tables", "product,tag", "--teardown")
    assert done.returncode == 0, done.stderr
    assert pg_app.query(f"SELECT 1 FROM pg_replication_slots WHERE slot_name = '{pg_app.slot}'") == []
    assert pg_app.query(f"SELECT 1 FROM pg_publication WHERE pubname = '{pg_app.slot}'") == []


@pytest.mark.postgres
def test_postgres_misconfigurations_each_say_what_to_change(workdir: Path, pg_app: AppDb) -> None:
    not_set_up = one_line_error(capture(workdir, pg_app, "--tables", "product"))
    assert not_set_up == (
        f"replication slot {pg_app.slot!r} does not exist in database {pg_app.where.rsplit('/', 1)[1]!r}:"
        " run webhook-manager capture postgres … --setup first"
    )
    assert "no table 'nothing' in database" in one_line_error(
        capture(workdir, pg_app, "--tables", "nothing", "--setup")
    )

    pg_app.execute("CREATE TABLE note (body text)")  # no primary key: no replica identity
    no_identity = one_line_error(capture(workdir, pg_app, "--tables", "product,note", "--setup"))
    assert no_identity == (
        "table 'note' has no replica identity, so PostgreSQL would refuse its UPDATE and DELETE once published:"
        " give it a primary key or run ALTER TABLE public.note REPLICA IDENTITY FULL"
    )
    pg_app.execute("ALTER TABLE note REPLICA IDENTITY FULL")
    assert capture(workdir, pg_app, "--tables", "product,note", "--setup").returncode == 0

    role = f"wm_plain_{pg_app.slot[-6:]}"
    pg_app.execute(f"CREATE ROLE {role} LOGIN")
    try:
        plain = pg_app.where.replace("://postgres@", f"://{role}@")
        result = wm(workdir, "capture", "postgres", "--dsn", plain, "--client-code", "1", "--tables", "product")
        assert one_line_error(result) == (
            f"role {role!r} lacks the REPLICATION attribute that logical capture needs:"
            f" run ALTER ROLE {role} REPLICATION (or use --mode trigger)"
        )
        # trigger mode needs no REPLICATION, but setting it up needs CREATE on the database and the tables
        result = wm(workdir, "capture", "postgres", "--dsn", plain, "--client-code", "1", "--tables", "product",
                    "--mode", "trigger", "--setup")  # fmt: skip
        assert one_line_error(result).startswith(f"role {role!r} may not set up the capture in ")
    finally:
        pg_app.execute(f"DROP ROLE {role}")

    unreachable = wm(
        workdir, "capture", "postgres", "--dsn", "postgresql://nobody:secret@127.0.0.1:1/app",
        "--client-code", "1", "--tables", "product",
    )  # fmt: skip
    error = one_line_error(unreachable)
    assert error.startswith("cannot connect to postgres postgresql://nobody:***@127.0.0.1:1/app: ")
    assert "secret" not in error
    unreachable = wm(
        workdir, "capture", "mysql", "--dsn", "mysql://nobody:secret@127.0.0.1:1/app",
        "--client-code", "1", "--tables", "product",
    )  # fmt: skip
    error = one_line_error(unreachable)
    assert error.startswith("cannot connect to mysql mysql://nobody:***@127.0.0.1:1/app: ")
    assert "secret" not in error


@pytest.fixture(scope="module")
def replica_server() -> Iterator[str]:
    """A second PostgreSQL server of this machine's version, started with wal_level = replica."""
    initdb = PG_BIN / "initdb"
    if not initdb.exists() or shutil.which("runuser") is None:
        message = f"no PostgreSQL server binaries at {PG_BIN}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    data = Path(tempfile.mkdtemp(prefix="wm-replica-"))
    shutil.chown(data, "postgres")
    port = free_port()

    def as_postgres(*command: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *command], check=True, capture_output=True, timeout=120)

    as_postgres(str(initdb), "-D", str(data / "db"), "-A", "trust", "-U", "postgres")
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c wal_level=replica"
    as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data / "db"), "-o", options, "-l", str(data / "log"), "-w", "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "stop")
        shutil.rmtree(data, ignore_errors=True)


@pytest.mark.postgres
def test_wal_level_not_logical_says_how_to_change_it(workdir: Path, replica_server: str) -> None:
    conn = psycopg2.connect(replica_server)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS product (id integer PRIMARY KEY)")
    conn.close()
    args = ["--dsn", replica_server, "--client-code", "1", "--tables", "product"]
    for extra in ([], ["--setup"]):
        result = wm(workdir, "capture", "postgres", *args, *extra)
        assert one_line_error(result) == (
            "PostgreSQL's wal_level is 'replica'; logical capture needs wal_level = logical: run ALTER SYSTEM SET"
            " wal_level = logical and restart the server (or use --mode trigger)"
        )
    # the trigger mode works there
    done = wm(workdir, "capture", "postgres", *args, "--mode", "trigger", "--setup")
    assert done.returncode == 0, done.stderr
    conn = psycopg2.connect(replica_server)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("INSERT INTO product (id) VALUES (41)")
        cur.execute("SELECT table_name, action, row_id FROM webhook_manager_1.outbox")
        assert cur.fetchall() == [("product", "insert", "41")]
    conn.close()


def test_serve_runs_the_capture_sections_of_its_settings_file(workdir: Path, sqlite_app: AppDb) -> None:
    (workdir / "settings.toml").write_text(
        "allow_private_endpoints = true\n"
        "[[capture]]\n"
        'kind = "sqlite"\n'
        f'database = "{sqlite_app.where}"\n'
        'client_code = "555"\n'
        'tables = ["product"]\n'
        'data = "row"\n'
    )
    assert account_create(workdir, "555", "alice").returncode == 0
    receiver = ThreadedReceiver()
    try:
        with serve(workdir, "--config", "settings.toml") as served:
            with httpx.Client(base_url=served.url, timeout=10) as http:
                login = http.post(
                    "/api/",
                    data={"request": "verifyUser", "clientCode": "555", "username": "alice", "password": PASSWORD},
                ).json()
                headers = {"clientCode": "555", "sessionKey": login["records"][0]["sessionKey"]}
                body = {"table": "product", "action": "insert", "endpoint": receiver.url("/status/200"), "secret": "s"}
                assert http.post("/v1/webhook-configuration", json=body, headers=headers).status_code == 200
            sqlite_app.execute(("INSERT INTO product (id, name, price) VALUES (?, ?, ?)", (12, "tea", 2.5)))
            [webhook] = receiver.wait_for(1)
            assert (webhook["clientCode"], webhook["table"], webhook["action"]) == ("555", "product", "insert")
            assert [(i["rowId"], i["data"]) for i in webhook["items"]] == [
                (12, {"id": 12, "name": "tea", "price": 2.5})
            ]
            served.process.send_signal(signal.SIGTERM)
            assert served.process.wait(timeout=20) == 0
    finally:
        receiver.stop()


def test_serve_with_a_capture_section_that_cannot_work_stops_with_one_line(workdir: Path, sqlite_app: AppDb) -> None:
    (workdir / "settings.toml").write_text(
        f'[[capture]]\nkind = "sqlite"\ndatabase = "{sqlite_app.where}"\nclient_code = "1"\ntables = ["nothing"]\n'
    )
    for command in ("serve", "worker"):  # both run the sections, so both check them before they start
        error = one_line_error(wm(workdir, command, "--config", "settings.toml"))
        assert error == (
            f"capture of sqlite {sqlite_app.where}: no table 'nothing' in {sqlite_app.where} (tables: nothing)"
        )
    (workdir / "settings.toml").write_text('[[capture]]\nkind = "sqlite"\nclient_code = "1"\ntables = ["t"]\n')
    error = one_line_error(wm(workdir, "serve", "--config", "settings.toml"))
    assert error == "[[capture]] section 1: a sqlite source needs database (the application's database file)"


@contextlib.contextmanager
def private_mariadb(*options: str) -> Iterator[str]:
    """A MariaDB server of this machine's version on a free port with its own data folder, started with
    ``options``; its URL (root, no password)."""
    install, server = shutil.which("mariadb-install-db"), Path("/usr/sbin/mariadbd")
    if install is None or not server.exists():
        message = "no MariaDB server binaries (mariadb-install-db, /usr/sbin/mariadbd)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    data = Path(tempfile.mkdtemp(prefix="wm-mariadb-"))
    shutil.chown(data, "mysql")
    port = free_port()
    subprocess.run(
        [install, f"--datadir={data / 'db'}", "--user=mysql", "--auth-root-authentication-method=normal",
         "--skip-test-db"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    with (data / "log").open("w") as log:
        process = subprocess.Popen(
            [str(server), "--no-defaults", f"--datadir={data / 'db'}", f"--port={port}", "--bind-address=127.0.0.1",
             f"--socket={data / 'sock'}", f"--pid-file={data / 'pid'}", "--user=mysql", "--server-id=7", *options],
            stdout=log, stderr=log,
        )  # fmt: skip
    url = f"mysql://root@127.0.0.1:{port}"

    def answers() -> bool:
        try:
            pymysql.connect(host="127.0.0.1", port=port, user="root", connect_timeout=2).close()
        except pymysql.err.OperationalError:
            if process.poll() is not None:
                pytest.fail(f"private MariaDB exited: {(data / 'log').read_text()[-2000:]}")
            return False
        return True

    try:
        wait_until(
            answers,
            timeout=60,
            pause=0.2,
            what=lambda: f"private MariaDB to start: {(data / 'log').read_text()[-2000:]}",
        )
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)
        shutil.rmtree(data, ignore_errors=True)


def _on(url: str, *statements: str) -> None:
    parts = urlsplit(url)
    conn = pymysql.connect(host=parts.hostname, port=parts.port or 3306, user="root", autocommit=True)
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
    finally:
        conn.close()


def _binlogs(url: str) -> list[str]:
    parts = urlsplit(url)
    conn = pymysql.connect(host=parts.hostname, port=parts.port or 3306, user="root")
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW BINARY LOGS")
            return [str(row[0]) for row in cur.fetchall()]
    finally:
        conn.close()


def mysql_capture(workdir: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return wm(workdir, "capture", "mysql", "--dsn", url, "--client-code", "1", "--tables", "product", *args)


@pytest.mark.mysql
def test_mysql_misconfigurations_each_say_what_to_change(workdir: Path) -> None:
    with private_mariadb("--skip-log-bin") as server:
        _on(server, "CREATE DATABASE app", "CREATE TABLE app.product (id integer PRIMARY KEY)")
        assert one_line_error(mysql_capture(workdir, f"{server}/app")) == (
            "binary logging is off on the server: start it with log_bin (e.g. log-bin = mysql-bin and a server_id"
            " in the [mysqld] section of its configuration)"
        )
    with private_mariadb("--log-bin=mysql-bin", "--binlog-format=MIXED", "--binlog-row-metadata=MINIMAL") as server:
        app = f"{server}/app"
        _on(server, "CREATE DATABASE app", "CREATE TABLE app.product (id integer PRIMARY KEY)")
        assert one_line_error(mysql_capture(workdir, app)) == (
            "the server's binlog_format is MIXED; capture needs ROW: run SET GLOBAL binlog_format = 'ROW' and put"
            " binlog_format = ROW in its configuration"
        )
        _on(server, "SET GLOBAL binlog_format = 'ROW'")
        assert one_line_error(mysql_capture(workdir, app, "--setup")) == (
            "the server's binlog_row_metadata is MINIMAL; capture needs FULL, so row events name their columns:"
            " run SET GLOBAL binlog_row_metadata = 'FULL' and put it in its configuration"
        )
        _on(server, "SET GLOBAL binlog_row_metadata = 'FULL'")
        assert "no table 'nothing' in database 'app'" in one_line_error(
            wm(workdir, "capture", "mysql", "--dsn", app, "--client-code", "1", "--tables", "nothing")
        )
        _on(server, "CREATE USER plain@'%'", "GRANT SELECT ON app.* TO plain@'%'")
        plain = app.replace("://root@", "://plain@")
        assert one_line_error(mysql_capture(workdir, plain)) == (
            "user plain@% lacks the replication grants capture needs: run GRANT REPLICATION SLAVE, REPLICATION"
            " CLIENT ON *.* TO 'plain'@'%' (MariaDB: REPLICATION SLAVE, BINLOG MONITOR)"
        )

        # a stored position whose binlog was purged: say so, and how to start again
        done = mysql_capture(workdir, app, "--setup")
        assert done.returncode == 0, done.stderr
        _on(server, "INSERT INTO app.product VALUES (1)", "FLUSH BINARY LOGS", "FLUSH BINARY LOGS")

        def purged_to_3() -> bool:
            _on(server, "PURGE BINARY LOGS TO 'mysql-bin.000003'")  # a log is kept until its checkpoint is done
            return _binlogs(server)[0] == "mysql-bin.000003"

        wait_until(purged_to_3, timeout=30, pause=0.1, what=lambda: f"binlogs purged to 3: {_binlogs(server)}")
        purged = one_line_error(mysql_capture(workdir, app))
        assert purged.startswith("the stored binlog position mysql-bin.000001:")
        assert purged.endswith(
            "is no longer on the server (its binlogs were purged), so the changes since are lost: run capture"
            " mysql … --teardown, then --setup, to start again from now"
        )
        assert mysql_capture(workdir, app, "--teardown").returncode == 0
        assert mysql_capture(workdir, app, "--setup").returncode == 0
        assert "mysql-bin.000003" in mysql_capture(workdir, app, "--setup").stdout
