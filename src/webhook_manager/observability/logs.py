"""The service's log lines: today's text, or one JSON object per line (``log_format``, docs/commands.md#logs).

A line says where it happened with *location fields*, given as ``extra`` on the logging call; :func:`where`
builds that mapping and checks the names::

    log.warning("webhook %s: try %d failed", ..., extra=where(webhook_id=w.id, try_number=2))
    log.warning("...", extra={"webhook_id": w.id, "try_number": 2})  # the same

Only the fields of :data:`LOCATION_FIELDS` are written (in JSON under those keys; in text as ``key=value``
after the message); any other ``extra`` stays out of the line, so nothing is logged by accident. Every line,
in both formats, goes through :func:`~webhook_manager.observability.redaction.redacted`, so secret query
parameters are hidden whichever logger wrote them.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal, TextIO

import orjson
from pythonjsonlogger.json import JsonFormatter
from pythonjsonlogger.orjson import orjson_default

from webhook_manager.domain.timefmt import rfc3339_ms
from webhook_manager.observability.redaction import redacted

LogFormat = Literal["text", "json"]

LOCATION_FIELDS = ("webhook_id", "configuration_id", "endpoint_host", "client_code", "try_number", "capture_source")
"""The keys that say where a line happened, in the order the text format writes them."""

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_JSON_KEYS = frozenset({"time", "level", "logger", "message", "exception", "stack", *LOCATION_FIELDS})


def where(
    *,
    webhook_id: str | None = None,
    configuration_id: str | None = None,
    endpoint_host: str | None = None,
    client_code: str | None = None,
    try_number: int | None = None,
    capture_source: str | None = None,
) -> dict[str, object]:
    """The ``extra`` of a logging call carrying the location fields given (those left ``None`` are left out)."""
    given = {
        "webhook_id": webhook_id,
        "configuration_id": configuration_id,
        "endpoint_host": endpoint_host,
        "client_code": client_code,
        "try_number": try_number,
        "capture_source": capture_source,
    }
    return {key: value for key, value in given.items() if value is not None}


def _location(record: logging.LogRecord) -> list[tuple[str, object]]:
    return [(key, value) for key in LOCATION_FIELDS if (value := record.__dict__.get(key)) is not None]


def _text_value(value: object) -> str:
    text = str(value)
    if text and not any(c.isspace() or c in '"=' for c in text):
        return text
    return orjson.dumps(text).decode()  # quoted, as logfmt does, when it holds a space, a quote or '='


class TextLines(logging.Formatter):
    """Today's text line, with the record's location fields appended as `` key=value`` pairs."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        pairs = "".join(f" {key}={_text_value(value)}" for key, value in _location(record))
        return super().formatMessage(record) + pairs

    def format(self, record: logging.LogRecord) -> str:
        return redacted(super().format(record))


def _orjson_dumps(data: object, *, default: Any = None, **_json_dumps_options: object) -> str:
    """python-json-logger's serializer hook, with orjson (the options json.dumps takes do not apply)."""
    return orjson.dumps(data, default=default).decode()


class JsonLines(JsonFormatter):
    """One JSON object per line: ``time`` (RFC 3339, UTC, milliseconds), ``level``, ``logger``, ``message``,
    the location fields the record carries, and ``exception`` (the traceback text) when there is one."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={
                "asctime": "time",
                "levelname": "level",
                "name": "logger",
                "exc_info": "exception",
                "stack_info": "stack",
            },
            json_serializer=_orjson_dumps,
            json_default=orjson_default,
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return rfc3339_ms(int(record.created * 1000))

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        kept = {key: value for key, value in log_data.items() if key in _JSON_KEYS and value is not None}
        kept["level"] = str(kept.get("level", "")).lower()
        for key, value in kept.items():  # the location fields too: a capture source names its database
            if isinstance(value, str):
                kept[key] = redacted(value)
        return kept


def formatter(log_format: LogFormat) -> logging.Formatter:
    """The formatter of ``log_format``."""
    return JsonLines() if log_format == "json" else TextLines()


def configure(level: str, log_format: LogFormat, stream: TextIO | None = None) -> None:
    """Send the service's log to standard error (or ``stream``) at ``level`` in ``log_format``; like
    :func:`logging.basicConfig`, nothing changes when the root logger has a handler already. In json, Python's
    warnings become log lines too, so they do not break the one-object-a-line output."""
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(formatter(log_format))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    if log_format == "json":
        logging.captureWarnings(True)


def uvicorn_log_config(log_format: LogFormat) -> dict[str, Any]:
    """uvicorn's ``log_config``: its own (today's look) for text; for json, its loggers (``uvicorn.error``,
    ``uvicorn.access``) written by :class:`JsonLines` to standard error."""
    if log_format == "text":
        from uvicorn.config import LOGGING_CONFIG

        return LOGGING_CONFIG
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonLines}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        },
    }
