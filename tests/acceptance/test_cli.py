"""The installed ``webhook-manager`` command, run in a subprocess as a user runs it."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import httpx
import pytest

from tests.acceptance.cli import account_create, serve, wm


def test_account_create_serve_login_crud_and_sigterm(workdir: Path) -> None:
    created = account_create(workdir, "555", "alice", "a long enough password\n")  # as `echo` would pipe it
    assert created.returncode == 0, created.stderr
    assert "alice" in created.stdout
    assert (workdir / "var" / "webhook-manager.db").exists()

    with serve(workdir, "--allow-private-endpoints") as served:
        line = served.banner[-1]
        assert served.url in line
        assert f"{served.url}/api/docs" in line
        # An account existed, so nothing was bootstrapped.
        assert not any("password" in b for b in served.banner)
        with httpx.Client(base_url=served.url, timeout=10) as http:
            assert http.get("/healthz").status_code == 200
            assert http.get("/readyz").status_code == 200
            assert http.get("/api/docs").status_code == 200
            assert http.get("/api/docs/openapi.json").json()["paths"]["/v1/webhook-configuration"]
            login = http.post(
                "/api/",
                data={
                    "request": "verifyUser",
                    "clientCode": "555",
                    "username": "alice",
                    "password": "a long enough password",
                },
            ).json()
            assert login["status"]["errorCode"] == 0, login
            headers = {"clientCode": "555", "sessionKey": login["records"][0]["sessionKey"]}
            body = {
                "table": "product",
                "action": "insert",
                "endpoint": "http://127.0.0.1:9/hook",
                "secret": "s",
            }
            made = http.post("/v1/webhook-configuration", json=body, headers=headers)
            assert made.status_code == 200, made.text
            cid = made.json()["id"]
            assert [c["id"] for c in http.get("/v1/webhook-configuration", headers=headers).json()] == [cid]
            replaced = http.put(
                f"/v1/webhook-configuration/{cid}",
                json={**body, "action": "update", "disabled": True},
                headers=headers,
            )
            assert replaced.status_code == 200
            assert replaced.json()["action"] == "update"
            assert replaced.json()["disabled"] is True
            assert http.get(f"/v1/webhook-configuration/{cid}", headers=headers).json() == replaced.json()
            removed = http.delete(f"/v1/webhook-configuration/{cid}", headers=headers)
            assert removed.json() == {"message": "configuration removed"}
            assert http.get("/v1/webhook-configuration", headers=headers).json() == []
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=20) == 0


def test_first_start_bootstraps_an_admin_once(workdir: Path) -> None:
    with serve(workdir) as served:
        text = "".join(served.banner)
        password = re.search(r"password (\S+)\n", text)
        assert password is not None, text
        assert "clientCode 100" in text
        assert "username admin" in text
        assert "curl" in text
        with httpx.Client(base_url=served.url, timeout=10) as http:
            answer = http.post(
                "/api/",
                data={
                    "request": "verifyUser",
                    "clientCode": "100",
                    "username": "admin",
                    "password": password.group(1),
                },
            ).json()
            assert answer["status"]["errorCode"] == 0
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=20) == 0
    with serve(workdir) as served:
        assert not any("password" in line for line in served.banner)
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=20) == 0


def test_no_bootstrap_account(workdir: Path) -> None:
    with serve(workdir, "--no-bootstrap-account") as served:
        assert not any("password" in line for line in served.banner)
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=20) == 0


def test_a_bad_setting_stops_start_up_with_one_line(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_MANAGER_RETRIES", "lots")
    result = wm(workdir, "serve")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "WEBHOOK_MANAGER_RETRIES" in result.stderr


def test_account_create_refuses_bad_input_naming_the_flag(workdir: Path) -> None:
    bad_code = account_create(workdir, "a b", "x")
    assert bad_code.returncode != 0
    assert "--client-code" in bad_code.stderr
    short = account_create(workdir, "1", "x", "short")
    assert short.returncode != 0
    assert "password" in short.stderr
    assert account_create(workdir, "1", "x").returncode == 0
    again = account_create(workdir, "1", "x")
    assert again.returncode == 1
    assert "exists already" in again.stderr
    for result in (bad_code, short, again):
        assert "Traceback" not in result.stderr


def test_migrate(workdir: Path) -> None:
    first = wm(workdir, "migrate")
    assert first.returncode == 0
    assert "applied migrations [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]" in first.stdout
    second = wm(workdir, "migrate")
    assert second.returncode == 0
    assert "up to date" in second.stdout


def test_a_file_that_is_not_a_store_stops_with_one_line(workdir: Path) -> None:
    (workdir / "var").mkdir()
    (workdir / "var" / "webhook-manager.db").write_bytes(b"this is not a database, just some text" * 100)
    for args in (("migrate",), ("serve",)):
        result = wm(workdir, *args)
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert "store unavailable" in result.stderr
        assert "not a database" in result.stderr


def test_the_access_log_keeps_no_secret_of_a_query_string(workdir: Path) -> None:
    with serve(workdir, "--no-bootstrap-account", env={"WEBHOOK_MANAGER_ACCESS_LOG": "true"}) as served:
        target = "/api/?request=getSessionKeyInfo&clientCode=100&username=bob&sessionKey=S3CRETKEY&password=PW0RD123"
        httpx.get(served.url + target, timeout=10)
        line = served.next_line(lambda text: "/api/?" in text)
    assert "S3CRETKEY" not in line
    assert "PW0RD123" not in line
    assert "request=getSessionKeyInfo&clientCode=100&username=bob&sessionKey=***&password=***" in line
