"""Log lines as text or as one JSON object per line, with the location fields a call gives (observability/logs.py)."""

from __future__ import annotations

import asyncio
import io
import logging
import logging.config
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from webhook_manager import cli
from webhook_manager.capture import supervisor
from webhook_manager.capture.spec import CaptureSpec
from webhook_manager.delivery import batcher
from webhook_manager.observability.logs import LOCATION_FIELDS, JsonLines, TextLines, uvicorn_log_config, where
from webhook_manager.observability.redaction import SecretsRedacted
from webhook_manager.settings import Settings, SettingsError

RFC3339_MS_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
EVERYWHERE = {
    "webhook_id": "0123456789abcdef01234567",
    "configuration_id": "89abcdef0123456789abcdef",
    "endpoint_host": "hooks.example.com",
    "client_code": "100",
    "try_number": 2,
    "capture_source": "sqlite /srv/app data/app.db",
}


class Written:
    """A logger of its own writing through one formatter into a buffer."""

    def __init__(self, formatter: logging.Formatter, name: str) -> None:
        self.buffer = io.StringIO()
        handler = logging.StreamHandler(self.buffer)
        handler.setFormatter(formatter)
        self.log = logging.getLogger(name)
        self.log.handlers = [handler]
        self.log.propagate = False
        self.log.setLevel(logging.DEBUG)

    @property
    def lines(self) -> list[str]:
        return self.buffer.getvalue().splitlines()

    def objects(self) -> list[dict[str, Any]]:
        parsed = [orjson.loads(line) for line in self.lines]
        assert all(isinstance(p, dict) for p in parsed)
        return parsed


@pytest.fixture
def as_json(request: pytest.FixtureRequest) -> Iterator[Written]:
    written = Written(JsonLines(), f"test.logs.json.{request.node.name}")
    yield written
    written.log.handlers = []


@pytest.fixture
def as_text(request: pytest.FixtureRequest) -> Iterator[Written]:
    written = Written(TextLines(), f"test.logs.text.{request.node.name}")
    yield written
    written.log.handlers = []


def test_a_json_line_has_time_level_logger_message_and_the_location_fields(as_json: Written) -> None:
    as_json.log.warning("try %d of webhook %s failed: %s", 2, "w1", "HTTP 500", extra=EVERYWHERE)
    [line] = as_json.objects()
    assert RFC3339_MS_UTC.fullmatch(line["time"]), line
    assert line["level"] == "warning"
    assert line["logger"] == as_json.log.name
    assert line["message"] == "try 2 of webhook w1 failed: HTTP 500"
    assert {key: line[key] for key in LOCATION_FIELDS} == EVERYWHERE
    assert set(line) == {"time", "level", "logger", "message", *LOCATION_FIELDS}


def test_json_carries_only_the_location_fields_a_record_has_and_no_other_extra(as_json: Written) -> None:
    as_json.log.info("formed", extra={"client_code": "7", "color_message": "\x1b[1mformed", "password": "pw"})
    as_json.log.info("formed", extra=where(client_code="7", webhook_id=None))
    for line in as_json.objects():
        assert set(line) == {"time", "level", "logger", "message", "client_code"}
        assert (line["message"], line["client_code"]) == ("formed", "7")
    assert "pw" not in as_json.buffer.getvalue()


def test_an_exception_is_a_field_of_the_same_single_json_line(as_json: Written) -> None:
    try:
        raise KeyError("missing")
    except KeyError:
        as_json.log.exception("cannot form webhooks of %s", "100/product/insert", extra=where(client_code="100"))
    [raw] = as_json.lines  # one line: the traceback's newlines are escaped inside the string
    line = orjson.loads(raw)
    assert line["level"] == "error"
    assert line["message"] == "cannot form webhooks of 100/product/insert"
    assert line["client_code"] == "100"
    assert line["exception"].startswith("Traceback (most recent call last):")
    assert "KeyError: 'missing'" in line["exception"]


def test_text_appends_the_location_fields_as_key_value_pairs(as_text: Written) -> None:
    as_text.log.warning("try %d failed", 2, extra=EVERYWHERE)
    as_text.log.info("nothing to say where")
    first, second = as_text.lines
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING test\.logs\.text\.\S+: try 2 failed .*", first)
    assert first.endswith(
        " webhook_id=0123456789abcdef01234567 configuration_id=89abcdef0123456789abcdef"
        ' endpoint_host=hooks.example.com client_code=100 try_number=2 capture_source="sqlite /srv/app data/app.db"'
    )
    assert second.endswith(": nothing to say where")  # today's line, nothing added


def test_text_puts_the_pairs_on_the_message_line_before_the_traceback(as_text: Written) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        as_text.log.exception("capture failed", extra=where(capture_source="mysql mysql://app:***@db/app"))
    lines = as_text.lines
    assert lines[0].endswith(': capture failed capture_source="mysql mysql://app:***@db/app"')
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "RuntimeError: boom"


@pytest.mark.parametrize("make", [JsonLines, TextLines])
def test_secret_query_parameters_are_hidden_in_messages_and_tracebacks_in_both_formats(
    make: type[logging.Formatter], request: pytest.FixtureRequest
) -> None:
    written = Written(make(), f"test.logs.redact.{request.node.name}")
    try:
        raise ValueError("GET /api/?sessionKey=k3y-k3y&jwt=a.b.c failed")
    except ValueError:
        written.log.exception("GET %s", "/api/?request=verifyUser&password=hunter2&clientCode=100")
    text = written.buffer.getvalue()
    for secret in ("k3y-k3y", "a.b.c", "hunter2"):
        assert secret not in text
    assert "password=***&clientCode=100" in text
    written.log.handlers = []


def test_the_location_helper_drops_what_is_not_given() -> None:
    assert where() == {}
    assert where(client_code="100", try_number=1, webhook_id=None) == {"client_code": "100", "try_number": 1}


@pytest.fixture
def uvicorn_loggers() -> Iterator[None]:
    """uvicorn's loggers as they were, after a test that configured them."""
    names = ("uvicorn", "uvicorn.error", "uvicorn.access")
    saved = [(lg, lg.handlers[:], lg.filters[:], lg.propagate, lg.level) for lg in map(logging.getLogger, names)]
    yield
    for lg, handlers, filters, propagate, level in saved:
        lg.handlers, lg.filters, lg.propagate, lg.level = handlers, filters, propagate, level


@pytest.mark.usefixtures("uvicorn_loggers")
def test_uvicorns_loggers_write_json_to_standard_error_and_the_access_log_stays_redacted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logging.config.dictConfig(uvicorn_log_config("json"))
    logging.getLogger("uvicorn.access").addFilter(SecretsRedacted())  # as service.serve adds it
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 42, extra={"color_message": "x"})
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/api/?request=verifyUser&password=pw1", "1.1", 200
    )
    captured = capsys.readouterr()
    assert captured.out == ""
    started, access = (orjson.loads(line) for line in captured.err.splitlines())
    assert (started["logger"], started["level"], started["message"]) == (
        "uvicorn.error",
        "info",
        "Started server process [42]",
    )
    assert access["logger"] == "uvicorn.access"
    assert access["message"] == '127.0.0.1:5000 - "GET /api/?request=verifyUser&password=*** HTTP/1.1" 200'


def test_text_keeps_uvicorns_own_look() -> None:
    from uvicorn.config import LOGGING_CONFIG

    assert uvicorn_log_config("text") == LOGGING_CONFIG


def test_capture_lines_say_which_source_and_client(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    spec = CaptureSpec(kind="mysql", dsn="mysql://app:s3cret@db:3306/app", client_code="100", tables=("product",))

    def unreachable(spec: CaptureSpec) -> None:
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setattr(supervisor, "check_source", unreachable)
    asyncio.run(supervisor.check_sources([spec]))
    [record] = [r for r in caplog.records if r.name == "webhook_manager.capture"]
    assert record.__dict__["capture_source"] == "mysql mysql://app:***@db:3306/app"
    assert record.__dict__["client_code"] == "100"
    assert "s3cret" not in JsonLines().format(record)


def test_a_subject_that_cannot_be_formed_is_logged_with_its_client(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise ValueError("a broken bundle")

    monkeypatch.setattr(batcher, "plan_batches", broken)
    forming = batcher.Batcher(None, Settings.load(), lambda: None)  # type: ignore[arg-type]  # the store is unused here
    forming.form(("100", "product", "insert"), [], [], True)
    [record] = [r for r in caplog.records if r.name == "webhook_manager.batcher"]
    assert record.getMessage() == "cannot form webhooks of 100/product/insert; its events stay pending"
    assert record.__dict__["client_code"] == "100"
    assert record.exc_info is not None


# the setting and the flag


@pytest.fixture
def no_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("WEBHOOK_MANAGER_")]:
        monkeypatch.delenv(name)


@pytest.mark.usefixtures("no_settings")
def test_the_setting_takes_text_or_json_and_defaults_to_text(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.load().log_format == "text"
    monkeypatch.setenv("WEBHOOK_MANAGER_LOG_FORMAT", "json")
    assert Settings.load().log_format == "json"
    assert Settings.load(log_format="text").log_format == "text"  # the flag wins
    monkeypatch.setenv("WEBHOOK_MANAGER_LOG_FORMAT", "xml")
    with pytest.raises(SettingsError) as bad:
        Settings.load()
    assert str(bad.value) == (
        "setting WEBHOOK_MANAGER_LOG_FORMAT (log_format in the config file):"
        " Input should be 'text' or 'json'; got 'xml'"
    )


COMMANDS = [
    ["serve"],
    ["api"],
    ["worker"],
    ["capture", "sqlite", "--database", "app.db", "--client-code", "100", "--tables", "product"],
    ["capture", "postgres", "--dsn", "postgresql://app@db/app", "--client-code", "100", "--tables", "product"],
    ["capture", "mysql", "--dsn", "mysql://app@db/app", "--client-code", "100", "--tables", "product"],
]


@pytest.mark.usefixtures("no_settings")
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_bad_log_format_is_refused_by_every_command_that_logs(command: list[str]) -> None:
    flag = CliRunner().invoke(cli.app, [*command, "--log-format", "xml"])
    assert flag.exit_code == 2
    said = re.sub(r"[\s│]+", " ", flag.output)  # the parser's box, unwrapped
    assert "Invalid value for '--log-format'" in said
    assert "'xml' is not one of 'text', 'json'" in said

    setting = CliRunner().invoke(cli.app, command, env={"WEBHOOK_MANAGER_LOG_FORMAT": "xml"})
    assert setting.exit_code == 2
    assert setting.output == (
        "webhook-manager: error: setting WEBHOOK_MANAGER_LOG_FORMAT (log_format in the config file):"
        " Input should be 'text' or 'json'; got 'xml'\n"
    )


def test_configured_for_json_every_line_on_standard_error_is_an_object_warnings_too() -> None:
    program = (
        "import logging, warnings\n"
        "from webhook_manager.observability.logs import configure, where\n"
        "configure('debug', 'json')\n"
        "logging.getLogger('webhook_manager.x').debug('hello', extra=where(client_code='100'))\n"
        "warnings.warn('a warning of a library', UserWarning)\n"
    )
    ran = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=30, check=True)
    hello, warned = (orjson.loads(line) for line in ran.stderr.splitlines())
    assert (hello["logger"], hello["level"], hello["message"], hello["client_code"]) == (
        "webhook_manager.x",
        "debug",
        "hello",
        "100",
    )
    assert warned["logger"] == "py.warnings"
    assert "UserWarning: a warning of a library" in warned["message"]
    assert ran.stdout == ""
