"""``serve --log-format json``: every line on standard error is a JSON object (uvicorn's too), and no password,
session key, identity token or configuration secret is ever in the output, whichever way a client sends it."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.acceptance.cli import account_create, serve
from tests.receiver import ThreadedReceiver
from tests.waiting import wait_until

PASSWORD = "Tr0ub4dor&3-horse-battery"  # distinctive, so a leak anywhere in the output is found
SECRET = "cfg-secret-5f3a9c1e7b"


@pytest.fixture
def receiver() -> Iterator[ThreadedReceiver]:
    running = ThreadedReceiver()
    yield running
    running.stop()


def test_json_logs_are_one_object_a_line_with_no_secret_in_them(workdir: Path, receiver: ThreadedReceiver) -> None:
    assert account_create(workdir, "100", "alice", PASSWORD).returncode == 0
    env = {
        "WEBHOOK_MANAGER_LOG_LEVEL": "debug",
        "WEBHOOK_MANAGER_ACCESS_LOG": "true",
        "WEBHOOK_MANAGER_RETRIES": "0",  # the first failed try fails the webhook
    }
    secrets: list[str] = [PASSWORD, SECRET]
    args = ("--allow-private-endpoints", "--log-format", "json", "--no-bootstrap-account")
    with serve(workdir, *args, env=env) as served, httpx.Client(base_url=served.url, timeout=10) as http:
        login = http.post(
            "/api/", data={"request": "verifyUser", "clientCode": "100", "username": "alice", "password": PASSWORD}
        ).json()
        assert login["status"]["errorCode"] == 0, login
        record = login["records"][0]
        key, token = record["sessionKey"], record["identityToken"]
        secrets += [key, token]

        # The same secrets in query strings, where the access log sees them.
        query = {"request": "verifyUser", "clientCode": "100", "username": "alice", "password": PASSWORD}
        by_get = http.get("/api/", params={**query, "sessionKey": key}).json()
        assert by_get["status"]["errorCode"] == 0, by_get
        secrets += [by_get["records"][0]["sessionKey"], by_get["records"][0]["identityToken"]]
        exchanged = http.get("/api/", params={"request": "verifyIdentityToken", "jwt": token}).json()
        assert exchanged["status"]["errorCode"] == 0, exchanged
        secrets.append(exchanged["records"]["sessionKey"])

        headers = {"clientCode": "100", "sessionKey": key}
        endpoint = receiver.url("/status/500")
        made = http.post(
            "/v1/webhook-configuration",
            json={"table": "product", "action": "update", "endpoint": endpoint, "secret": SECRET},
            headers=headers,
        )
        assert made.status_code == 200, made.text
        recorded = http.post(
            "/v1/event",
            json={"table": "product", "action": "update", "items": [{"rowId": 1}, {"rowId": 2}]},
            headers=headers,
        )
        assert recorded.json() == {"received": 2, "recorded": 2}
        listed = http.get("/v1/webhook-configuration", headers={"jwt": token})
        assert listed.status_code == 200, listed.text
        assert http.get("/v1/webhook-configuration", headers={"jwt": "not.a.token"}).status_code == 401

        def failed() -> list[dict[str, Any]]:
            webhooks: list[dict[str, Any]] = http.get("/v1/webhook", params={"limit": 5}, headers=headers).json()
            return [w for w in webhooks if w["status"] == "failed"]

        [webhook] = wait_until(failed, timeout=20, what="the webhook's try to be logged as failed")
        assert webhook["lastFailure"] == "HTTP 500"
        assert len(receiver.received) == 1

        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=20) == 0
        assert served.process.stdout is not None
        stdout = "".join(served.banner) + served.process.stdout.read()

    port = served.url.rsplit(":", 1)[1]
    stderr = (workdir / f"serve-{port}.log").read_text()
    lines = [orjson.loads(line) for line in stderr.splitlines()]
    assert lines, "nothing was logged"
    for line in lines:
        assert isinstance(line, dict), line
        assert {"time", "level", "logger", "message"} <= set(line), line
    access = [line["message"] for line in lines if line["logger"] == "uvicorn.access"]
    assert any('"POST /v1/event HTTP/1.1" 200' in message for message in access), access
    assert any("/api/?request=verifyUser" in message and "password=***" in message for message in access), access
    assert any("jwt=***" in message for message in access), access
    assert any(line["logger"] == "uvicorn.error" for line in lines)
    # the failed try is one warning line naming the webhook, its configuration, host, client and try
    [tried] = [line for line in lines if "webhook_id" in line]
    assert tried["level"] == "warning", tried
    located = {key: tried[key] for key in ("webhook_id", "configuration_id", "endpoint_host", "client_code")}
    assert located == {
        "webhook_id": webhook["id"],
        "configuration_id": made.json()["id"],
        "endpoint_host": "127.0.0.1",
        "client_code": "100",
    }
    assert tried["try_number"] == 1
    assert "HTTP 500" in tried["message"]

    output = stdout + stderr
    for secret in secrets:
        assert secret not in output, f"a secret is in the output: {secret[:6]}…"
