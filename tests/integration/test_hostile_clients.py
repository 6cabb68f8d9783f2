"""Clients that misbehave on the wire: the service answers or drops them quietly, and stays up for the others."""

from __future__ import annotations

import logging
import socket

import httpx
import pytest

from tests.conftest import LiveServer
from tests.waiting import wait_until


def test_a_client_gone_mid_body_is_no_error_and_no_traceback(
    server: LiveServer, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="webhook_manager.api")
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            b"POST /api/ HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 60000\r\n\r\nrequest=verifyUser&clientCode=100"
        )  # then gone, 59 967 bytes short of it
    wait_until(
        lambda: any("went away" in r.getMessage() for r in caplog.records),
        timeout=10,
        what="the API to notice the client went away",
    )
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert http.get("/healthz").status_code == 200
