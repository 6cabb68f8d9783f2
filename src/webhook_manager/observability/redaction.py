"""Secrets never go into a log line, a metric label or a report: the values of secret query parameters
(session keys, passwords, tokens) and the password of a URL's user info are replaced by ``***`` before a line
is written, wherever the line comes from."""

from __future__ import annotations

import logging
import re

SECRET_PARAMETERS = re.compile(
    r"(?i)((?:^|[?&;])(?:sessionkey|password|sslpassword|passwd|jwt|token|identitytoken|access_token|refresh_token"
    r"|secret|apikey|api_key|key)=)[^&;\s\"']*"
)
USER_PASSWORD = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@/\s]*@")


def redacted(text: str) -> str:
    """``text`` with the values of secret query parameters, and the passwords of URLs (``scheme://user:pw@``),
    replaced by ``***``."""
    return USER_PASSWORD.sub(r"\1***@", SECRET_PARAMETERS.sub(r"\1***", text))


class SecretsRedacted(logging.Filter):
    """A filter for loggers whose lines carry request targets (uvicorn's access log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redacted(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redacted(record.msg)
        return True
