"""Secrets never go into a log line: query-string values of session keys, passwords and tokens are replaced
by ``***`` before a line is written, wherever the line comes from."""

from __future__ import annotations

import logging
import re

SECRET_PARAMETERS = re.compile(r"(?i)((?:^|[?&;])(?:sessionkey|password|jwt|token|identitytoken|secret)=)[^&;\s\"]*")


def redacted(text: str) -> str:
    """``text`` with the values of secret query parameters replaced by ``***``."""
    return SECRET_PARAMETERS.sub(r"\1***", text)


class SecretsRedacted(logging.Filter):
    """A filter for loggers whose lines carry request targets (uvicorn's access log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redacted(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redacted(record.msg)
        return True
