"""Tried as a new user of an Erply client would: the installed command, and nothing changed in the client but
its base URL (README, "Using it from Erply clients")."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from tests.acceptance.cli import PASSWORD, account_create, serve


def test_an_sdk_finds_the_webhook_service_through_get_service_endpoints(workdir: Path) -> None:
    assert account_create(workdir).returncode == 0
    with serve(workdir, command="api") as served, httpx.Client(timeout=30) as http:
        found = http.post(f"{served.url}/api/", data={"request": "getServiceEndpoints", "clientCode": "100"}).json()
        webhook = found["records"][0]["webhook"]["url"]
        assert webhook == f"{served.url}/"
        login = {"request": "verifyUser", "clientCode": "100", "username": "alice", "password": PASSWORD}
        key = http.post(f"{served.url}/api/", data=login).json()["records"][0]["sessionKey"]
        headers = {"clientCode": "100", "sessionKey": key}
        body = {"table": "product", "action": "insert", "endpoint": "https://example.com/hook", "secret": "s"}
        made = http.post(f"{webhook}v1/webhook-configuration", json=body, headers=headers)
        assert made.status_code == 200, made.text
        listed = http.get(f"{webhook}v1/webhook-configuration", headers=headers).json()
        assert [c["id"] for c in listed] == [made.json()["id"]]


@pytest.mark.parametrize("auth", ["session key", "jwt"])
def test_the_calls_of_an_n8n_erply_trigger(workdir: Path, auth: str) -> None:
    """What an n8n Erply trigger node does when it is activated and deactivated: log in by GET with the
    fields in the query and its Basic credentials along, list the configurations, add one with keys of its own,
    then remove the one it made."""
    assert account_create(workdir).returncode == 0
    basic = {"Authorization": "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()}
    with serve(workdir, command="api") as served, httpx.Client(base_url=served.url, timeout=30) as http:
        query = {"request": "verifyUser", "clientCode": "100", "username": "alice", "password": PASSWORD}
        login = http.get("/api/", params={**query, "sendContentType": "1"}, headers=basic).json()
        assert login["status"]["errorCode"] == 0, login
        record = login["records"][0]
        if auth == "jwt":
            headers = {"jwt": record["identityToken"]}
        else:
            headers = {"clientCode": "100", "sessionKey": record["sessionKey"]}

        assert http.get("/v1/webhook-configuration", headers=headers).json() == []
        hook = {
            "table": "product",
            "action": "insert",
            "endpoint": "https://n8n.example.com/webhook/3f1c/erply",
            "secret": "",
            "baseUrl": "https://n8n.example.com",  # the node's own keys, ignored
            "includeHeaders": True,
            "jmesPath": "items[*].rowId",
        }
        made = http.post("/v1/webhook-configuration", json=hook, headers=headers)
        assert made.status_code == 200, made.text
        assert set(made.json()) == {
            "id", "clientcode", "table", "action", "endpoint", "secret", "disabled", "createdat", "updatedat",
        }  # fmt: skip
        found = [
            c
            for c in http.get("/v1/webhook-configuration", headers=headers).json()
            if c["endpoint"] == hook["endpoint"]
        ]
        assert len(found) == 1
        removed = http.delete(f"/v1/webhook-configuration/{found[0]['id']}", headers=headers)
        assert removed.json() == {"message": "configuration removed"}
        assert http.get("/v1/webhook-configuration", headers=headers).json() == []
