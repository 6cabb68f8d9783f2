"""The counts of connections closed by the HTTP limits, their warnings, and the open-file limit raised for
the caps (the wire is tested in tests/acceptance/test_http_limits.py)."""

from __future__ import annotations

import logging
import resource

import pytest

from webhook_manager.api import http_limits
from webhook_manager.api.http_limits import ConnectionLimits
from webhook_manager.settings import Settings


def test_closings_are_counted_per_status_and_said_at_most_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    limits = ConnectionLimits(Settings(), now=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="webhook_manager.api")
    for status in (503, 503, 408, 503, 431):
        limits.count(status)
    now[0] += 59.9
    limits.count(503)
    now[0] += 0.1
    limits.count(503)
    assert limits.closed == {503: 5, 408: 1, 431: 1}
    assert [r.getMessage() for r in caplog.records] == [
        "answered 503 and closed a connection: too many connections (1 so far; said at most once a minute)",
        "answered 408 and closed a connection: request head too slow (1 so far; said at most once a minute)",
        "answered 431 and closed a connection: request head too large (1 so far; said at most once a minute)",
        "answered 503 and closed a connection: too many connections (5 so far; said at most once a minute)",
    ]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ((1024, 4096), (2124, 4096)),  # raised to 1000 connections + 1024 tries + 100
        ((1024, 2000), (2000, 2000)),  # as far as the hard limit allows, with a warning
        ((4096, 4096), None),  # enough already: left alone
    ],
)
def test_the_open_file_limit_is_raised_to_what_the_caps_need(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    before: tuple[int, int],
    after: tuple[int, int] | None,
) -> None:
    set_to: list[tuple[int, int]] = []
    monkeypatch.setattr(resource, "getrlimit", lambda which: before)
    monkeypatch.setattr(resource, "setrlimit", lambda which, limits: set_to.append(limits))
    caplog.set_level(logging.WARNING, logger="webhook_manager.api")
    http_limits.raise_open_files_limit(Settings())
    assert set_to == ([] if after is None else [after])
    assert bool(caplog.records) == (after is not None and after[0] < 2124)
