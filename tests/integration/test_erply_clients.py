"""Every way an Erply client logs in and finds the service (docs/api.md): ``/api/`` by GET and POST, identity
tokens and the ``jwt`` header, getServiceEndpoints. Over real HTTP against the served app."""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
import pytest

from tests.clock import FakeClock
from tests.conftest import create_account, serving
from webhook_manager import accounts
from webhook_manager.settings import Settings

PASSWORD = "correct horse battery"
BASIC = {"Authorization": "Basic " + base64.b64encode(b"alice:" + PASSWORD.encode()).decode()}
CONFIG = {"table": "product", "action": "insert", "endpoint": "https://example.com/hook", "secret": "s"}


@pytest.fixture
def served(tmp_path: Path, clock: FakeClock) -> Iterator[tuple[httpx.Client, Settings]]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'wm.db'}", public_url="https://hooks.example.com")
    with serving(settings, clock=clock) as live, httpx.Client(base_url=live.url, timeout=30) as http:
        create_account(settings, "100", "alice", PASSWORD)
        create_account(settings, "200", "bob", PASSWORD)
        yield http, settings


def call(http: httpx.Client, how: str, path: str = "/api/", **fields: str) -> dict[str, Any]:
    """One ``/api/`` call, ``how``: GET with a query, or POST as a form, multipart or JSON."""
    if how == "get":
        answer = http.get(path, params=fields, headers=BASIC)
    elif how == "form":
        answer = http.post(path, data=fields, headers=BASIC)
    elif how == "multipart":
        answer = http.post(path, files={k: (None, v) for k, v in fields.items()}, headers=BASIC)
    else:
        answer = http.post(path, content=orjson.dumps(fields), headers={**BASIC, "Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = orjson.loads(answer.content)
    return body


def login(http: httpx.Client, code: str = "100", user: str = "alice", **extra: str) -> dict[str, Any]:
    answer = call(http, "form", request="verifyUser", clientCode=code, username=user, password=PASSWORD, **extra)
    assert answer["status"]["errorCode"] == 0, answer
    record: dict[str, Any] = answer["records"][0]
    return record


HOWS = ["get", "form", "multipart", "json"]


@pytest.mark.parametrize("path", ["/api/", "/api"])
@pytest.mark.parametrize("how", HOWS)
def test_verify_user_and_session_key_info_answer_alike_by_get_and_post(
    served: tuple[httpx.Client, Settings], how: str, path: str
) -> None:
    http, _ = served
    answer = call(
        http, how, path, request="verifyUser", clientCode="100", username="alice", password=PASSWORD, version="1.0"
    )
    assert answer["status"]["errorCode"] == 0, answer
    (record,) = answer["records"]
    assert set(record) == {"userID", "userName", "sessionKey", "sessionLength", "identityToken", "token"}
    info = call(http, how, path, request="getSessionKeyInfo", clientCode="100", sessionKey=record["sessionKey"])
    assert info["status"]["errorCode"] == 0, info
    assert set(info["records"][0]) == {"creationUnixTime", "expireUnixTime"}
    wrong = call(http, how, path, request="verifyUser", clientCode="100", username="alice", password="nope nope")
    assert wrong["status"]["errorCode"] == accounts.LOGIN_FAILED


def test_an_identity_token_can_be_left_out(served: tuple[httpx.Client, Settings]) -> None:
    http, _ = served
    record = login(http, doNotGenerateIdentityToken="1")
    assert set(record) == {"userID", "userName", "sessionKey", "sessionLength"}


V1_CALLS = [
    ("GET", "/v1/webhook-configuration", None),
    ("POST", "/v1/webhook-configuration", CONFIG),
    ("POST", "/v1/event", {"table": "product", "action": "insert", "items": [{"rowId": 1}]}),
    ("GET", "/v1/event?table=product&action=insert", None),
    ("GET", "/v1/webhook", None),
]


def test_the_jwt_header_works_on_every_v1_call_in_place_of_the_session_headers(
    served: tuple[httpx.Client, Settings],
) -> None:
    http, _ = served
    token = login(http)["identityToken"]
    headers = {"jwt": token}
    for method, path, body in V1_CALLS:
        answer = http.request(method, path, json=body, headers=headers)
        assert answer.status_code == 200, (method, path, answer.text)
    (configuration,) = http.get("/v1/webhook-configuration", headers=headers).json()
    url = f"/v1/webhook-configuration/{configuration['id']}"
    assert http.get(url, headers=headers).status_code == 200
    assert http.put(url, json={**CONFIG, "disabled": True}, headers=headers).json()["disabled"] is True
    assert http.delete(url, headers=headers).status_code == 200
    # with a clientCode of its own client, too; not with another's
    assert http.get("/v1/webhook", headers={**headers, "clientCode": "100"}).status_code == 200
    other = http.get("/v1/webhook", headers={**headers, "clientCode": "200"})
    assert other.status_code == 401
    assert other.json() == {"error": "the jwt does not belong to this clientCode"}


def forged(token: str, **changes: Any) -> str:
    """The token's claims signed again with ``key``/``algorithm`` (or with alg none)."""
    claims = jwt.decode(token, options={"verify_signature": False})
    key, algorithm = changes.pop("key", "another key " * 6), changes.pop("algorithm", "HS256")
    return jwt.encode({**claims, **changes}, key, algorithm=algorithm)


def alg_none(token: str) -> str:
    _, payload, _ = token.split(".")
    none = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=")
    return f"{none}.{payload}."


def test_each_bad_jwt_is_a_401_that_says_why(
    served: tuple[httpx.Client, Settings], clock: FakeClock, tmp_path: Path
) -> None:
    http, _ = served
    good = login(http)["identityToken"]
    bad = {
        "abc": "the jwt is malformed",
        forged(good): "the jwt is not signed by this service",
        forged(good, algorithm="HS512"): "the jwt is not signed with HS256",
        alg_none(good): "the jwt is not signed with HS256",
    }
    for token, error in bad.items():
        answer = http.get("/v1/webhook", headers={"jwt": token})
        assert (answer.status_code, answer.json()) == (401, {"error": error}), token
    doomed = login(http)
    with sqlite3.connect(tmp_path / "wm.db") as db:
        db.execute("DELETE FROM sessions WHERE key_hash = ?", (accounts.hash_session_key(doomed["sessionKey"]),))
    answer = http.get("/v1/webhook", headers={"jwt": doomed["identityToken"]})
    assert (answer.status_code, answer.json()) == (401, {"error": "the jwt's session no longer exists"})
    clock.advance(3601 * 1000)  # past the session's hour
    answer = http.get("/v1/webhook", headers={"jwt": good})
    assert (answer.status_code, answer.json()) == (401, {"error": "the jwt has expired"})


def test_token_calls_answer_in_erplys_record_shapes(served: tuple[httpx.Client, Settings]) -> None:
    http, _ = served
    record = login(http)
    key = record["sessionKey"]
    user = call(http, "get", request="getSessionKeyUser", clientCode="100", sessionKey=key)
    assert user["status"]["errorCode"] == 0, user
    (found,) = user["records"]
    assert set(found) == {"userID", "userName", "sessionKey", "sessionLength", "ipAddress", "identityToken", "token"}
    assert (found["userName"], found["sessionKey"], found["sessionLength"]) == ("alice", key, 3600)

    token = call(http, "form", request="getIdentityToken", clientCode="100", sessionKey=key)
    assert token["status"]["errorCode"] == 0, token
    assert set(token["records"]) == {"identityToken"}  # an object, as Erply gives it
    verified = call(
        http, "json", request="verifyIdentityToken", clientCode="100", jwt=token["records"]["identityToken"]
    )
    assert verified["status"]["errorCode"] == 0, verified
    fresh = verified["records"]["sessionKey"]
    assert fresh != key
    assert http.get("/v1/webhook", headers={"clientCode": "100", "sessionKey": fresh}).status_code == 200

    assert (
        call(http, "form", request="getIdentityToken", clientCode="100", sessionKey="nope")["status"]["errorCode"]
        == accounts.SESSION_INVALID
    )
    assert (
        call(http, "form", request="getSessionKeyUser", clientCode="200", sessionKey=key)["status"]["errorCode"]
        == accounts.SESSION_INVALID
    )
    assert (
        call(http, "form", request="verifyIdentityToken", clientCode="100", jwt="abc")["status"]["errorCode"]
        == accounts.SESSION_INVALID
    )
    assert (
        call(http, "form", request="verifyIdentityToken", clientCode="100")["status"]["errorCode"]
        == accounts.CREDENTIALS_MISSING
    )


def test_get_service_endpoints_names_only_the_webhook_service(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'wm.db'}", port=8123)  # no public_url
    with serving(settings) as live, httpx.Client(timeout=30) as http:
        answer = http.get(f"{live.url}/api/", params={"request": "getServiceEndpoints", "clientCode": "100"})
        body = answer.json()
    assert body["status"]["errorCode"] == 0, body
    assert body["records"] == [
        {
            "webhook": {
                "url": "http://127.0.0.1:8123/",  # from host and port (tests/acceptance follows it to the service)
                "documentation": "http://127.0.0.1:8123/api/docs",
                "isSandbox": False,
            }
        }
    ]


def test_a_public_url_setting_is_what_get_service_endpoints_gives(served: tuple[httpx.Client, Settings]) -> None:
    http, _ = served
    record = call(http, "form", request="getServiceEndpoints", clientCode="100")["records"][0]
    assert record["webhook"]["url"] == "https://hooks.example.com/"


def test_tokens_last_across_restarts_of_the_service(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'wm.db'}")
    create_account(settings, "100", "alice", PASSWORD)
    with serving(settings) as live, httpx.Client(base_url=live.url, timeout=30) as http:
        token = login(http)["identityToken"]
    with serving(settings) as live, httpx.Client(base_url=live.url, timeout=30) as http:
        assert http.get("/v1/webhook", headers={"jwt": token}).status_code == 200  # the key is the store's


def test_a_token_carries_its_sessions_claims_and_serves_its_own_client_only(
    served: tuple[httpx.Client, Settings],
) -> None:
    http, _ = served
    token = login(http)["identityToken"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == "webhook-manager"
    assert (claims["clientCode"], claims["userName"]) == ("100", "alice")
    assert claims["exp"] - claims["iat"] == 3600  # the session's
    verified = call(http, "form", request="verifyIdentityToken", clientCode="200", jwt=token)
    assert verified["status"]["errorCode"] == accounts.SESSION_INVALID  # another client's token


def test_a_token_issued_by_a_process_whose_clock_is_ahead_is_taken(
    served: tuple[httpx.Client, Settings], tmp_path: Path
) -> None:
    http, _ = served
    token = login(http)["identityToken"]
    with sqlite3.connect(tmp_path / "wm.db") as db:
        (key,) = db.execute("SELECT value FROM service_secrets WHERE name = 'identity-token-key'").fetchone()
    claims = jwt.decode(token, options={"verify_signature": False})
    ahead = forged(token, key=key, iat=claims["iat"] + 120)  # signed with the store's key, issued "later"
    assert http.get("/v1/webhook", headers={"jwt": ahead}).status_code == 200


def test_a_nul_in_a_username_or_secret_is_refused_plainly_on_both_stores(store_url: str) -> None:
    """PostgreSQL's text cannot hold NUL: a username with one is a failed login, a secret with one a 400."""
    settings = Settings(database_url=store_url)
    with serving(settings) as live, httpx.Client(base_url=live.url, timeout=30) as http:
        create_account(settings, "100", "alice", PASSWORD)
        nul = call(http, "form", request="verifyUser", clientCode="100", username="al\x00ice", password=PASSWORD)
        assert nul["status"]["errorCode"] == accounts.LOGIN_FAILED
        key = login(http)["sessionKey"]
        answer = http.post(
            "/v1/webhook-configuration",
            json={**CONFIG, "secret": "a\x00b"},
            headers={"clientCode": "100", "sessionKey": key},
        )
        assert (answer.status_code, answer.json()) == (400, {"error": "secret: must not contain NUL characters"})
