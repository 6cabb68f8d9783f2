"""``webhook-manager listen``, the local receiver, run as a user runs it: fed by a real ``serve``, and by hand."""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.cli import COMMAND, PASSWORD, account_create, free_port, serve, wm
from tests.waiting import wait_until
from webhook_manager.delivery.payload import webhook_body
from webhook_manager.delivery.signing import standard_headers

SECRET = "mySecretWord"
LINE_TIMEOUT_S = 30.0


class Listener:
    """A running ``listen`` process; its standard output read line by line on a thread, so a test waits for
    a line with a deadline and never on a blocked pipe."""

    def __init__(self, process: subprocess.Popen[str], port: int, errors: Path) -> None:
        self.process, self.url, self.errors = process, f"http://127.0.0.1:{port}/", errors
        self.printed: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for line in self.process.stdout:
                self._lines.put(line)
        self._lines.put(None)

    def next_line(self, timeout: float = LINE_TIMEOUT_S) -> str:
        """The next line printed, within ``timeout``."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"listen printed nothing within {timeout} s")
        if line is None:
            pytest.fail(f"listen ended (exit status {self.process.wait()})")
        self.printed.append(line)
        return line.rstrip("\n")

    def next_webhook(self) -> dict[str, Any]:
        """The next ``--json`` report."""
        report: dict[str, Any] = json.loads(self.next_line())
        return report

    def next_block(self) -> list[str]:
        """The next readable report: its lines up to the blank one that ends it."""
        lines = []
        while line := self.next_line():
            lines.append(line)
        return lines


@contextmanager
def listening(workdir: Path, *args: str) -> Iterator[Listener]:
    """``webhook-manager listen`` on a free port, started (its first line read) for the block, then stopped
    with SIGTERM (killed when it does not stop), also when the test fails. Its standard error goes to a file."""
    port = free_port()
    errors = workdir / f"listen-{port}.err"
    with errors.open("w") as stderr:
        process = subprocess.Popen(
            [COMMAND, "listen", "--port", str(port), *args],
            cwd=workdir,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    listener = Listener(process, port, errors)
    try:
        first = listener.next_line()
        assert first.startswith(f"listening on {listener.url} "), first
        yield listener
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        listener.reader.join(timeout=20)  # it closes standard output at its end


def test_a_webhook_from_serve_arrives_with_both_signatures_valid(workdir: Path) -> None:
    receiver_dir, service_dir = workdir / "listen", workdir / "service"
    receiver_dir.mkdir()
    service_dir.mkdir()
    assert account_create(service_dir).returncode == 0
    with (
        listening(receiver_dir, "--secret", SECRET, "--json") as listener,
        serve(service_dir, "--allow-private-endpoints") as served,
        httpx.Client(base_url=served.url, timeout=30) as http,
    ):
        login = http.post(
            "/api/",
            data={"request": "verifyUser", "clientCode": "100", "username": "alice", "password": PASSWORD},
        ).json()
        headers = {"clientCode": "100", "sessionKey": login["records"][0]["sessionKey"]}
        configuration = {"table": "product", "action": "update", "endpoint": listener.url, "secret": SECRET}
        made = http.post("/v1/webhook-configuration", json=configuration, headers=headers)
        assert made.status_code == 200, made.text
        items = [
            {"rowId": 1, "timestamp": "2020-01-01 00:00:00", "data": None},
            {"rowId": 2, "timestamp": "2020-01-01 00:00:01", "data": {"name": "tea", "price": 12345678901234567890}},
        ]
        recorded = http.post(
            "/v1/event", json={"table": "product", "action": "update", "items": items}, headers=headers
        )
        assert recorded.json() == {"received": 2, "recorded": 2}

        report = listener.next_webhook()
        assert report == {
            "id": report["id"],
            "table": "product",
            "action": "update",
            "eventCount": "2",
            "items": items,
            "hmac": "valid",
            "signature": "valid",
            "path": "/",
            "status": 200,
            "error": None,
        }

        def sent() -> list[dict[str, Any]]:
            return [w for w in http.get("/v1/webhook", headers=headers).json() if w["status"] == "sent"]

        assert [w["id"] for w in wait_until(sent, timeout=30, what="the webhook logged as sent")] == [report["id"]]
        listener.process.send_signal(signal.SIGINT)
        assert listener.process.wait(timeout=20) == 0
        assert SECRET not in "".join(listener.printed)


def test_a_forged_hmac_and_a_signature_made_with_another_secret_are_invalid(workdir: Path) -> None:
    webhook_id = "6284e24920ab9a8b363344dd"
    body = webhook_body(webhook_id, "not the secret", "100", "product", "insert", [{"rowId": 7}])
    with listening(workdir, "--secret", SECRET, "--json") as listener:
        answer = httpx.post(
            listener.url + "hooks?from=test",
            content=body,
            headers={
                "Content-Type": "application/json",
                **standard_headers("another", webhook_id, int(time.time()), body),
            },
            timeout=10,
        )
        assert answer.status_code == 200
        report = listener.next_webhook()
        assert (report["id"], report["eventCount"], report["items"]) == (webhook_id, "1", [{"rowId": 7}])
        assert report["hmac"] == "INVALID: hmac does not match"
        assert report["signature"] == "INVALID: signature does not match"
        assert report["path"] == "/hooks?from=test"

        assert httpx.post(listener.url, content=b"{not json", timeout=10).status_code == 200
        report = listener.next_webhook()
        assert report["error"] == "not a webhook: the body is not JSON (9 bytes)"
        assert (report["hmac"], report["signature"]) == ("not checked (not a webhook)", "absent")
        listener.process.send_signal(signal.SIGTERM)
        assert listener.process.wait(timeout=20) == 0
        assert listener.errors.read_text() == ""
        assert SECRET not in "".join(listener.printed)


def test_the_answer_is_the_status_asked_for_and_a_bad_status_is_one_line(workdir: Path) -> None:
    body = webhook_body("6284e24920ab9a8b363344dd", SECRET, "100", "product", "delete", [{"rowId": 3}])
    with listening(workdir, "--status", "500") as listener:
        assert httpx.post(listener.url + "x", content=body, timeout=10).status_code == 500
        block = listener.next_block()
        assert block[0].startswith("POST /x at ")
        assert block[0].endswith(", answering 500")
        assert block[1:] == [
            "  id          6284e24920ab9a8b363344dd",
            "  table       product",
            "  action      delete",
            "  eventCount  1",
            "  hmac        not checked (no --secret)",
            "  signature   absent",
            '  items       {"rowId":3}',
        ]

    bad = wm(workdir, "listen", "--status", "42")
    assert bad.returncode == 2
    assert bad.stderr == "webhook-manager: error: --status: expected an HTTP status from 100 to 599, got 42\n"
    assert bad.stdout == ""


def test_a_port_in_use_is_one_line_and_exit_status_1(workdir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = wm(workdir, "listen", "--port", str(port))
    assert result.returncode == 1
    assert result.stderr == (
        f"webhook-manager: error: cannot listen on 127.0.0.1:{port} (--host, --port): address already in use\n"
    )
    assert result.stdout == ""
