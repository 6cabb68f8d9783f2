"""``POST /api/``: verifyUser and getSessionKeyInfo, Erply-shaped, over real HTTP."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.clock import FakeClock
from tests.conftest import LiveServer, create_account, run, serving, sqlite_file, verify_user
from webhook_manager import accounts
from webhook_manager.domain.model import Session
from webhook_manager.domain.timefmt import now_ms
from webhook_manager.settings import Settings
from webhook_manager.store import open_store

PASSWORD = "correct horse battery"
STATUS_KEYS = {
    "request",
    "requestUnixTime",
    "responseStatus",
    "errorCode",
    "generationTime",
    "recordsTotal",
    "recordsInResponse",
}


@pytest.fixture
def alice(settings: Settings, server: LiveServer) -> None:
    create_account(settings, "100", "alice", PASSWORD)


def key_info(http: httpx.Client, client_code: str, key: str) -> Any:
    answer = http.post("/api/", data={"request": "getSessionKeyInfo", "clientCode": client_code, "sessionKey": key})
    assert answer.status_code == 200
    return orjson.loads(answer.content)


def assert_error(answer: Any, code: int) -> None:
    assert answer["status"]["responseStatus"] == "error"
    assert answer["status"]["errorCode"] == code
    assert answer["records"] == []
    assert answer["status"]["recordsTotal"] == 0


def test_verify_user_answers_in_erplys_shape(http: httpx.Client, alice: None) -> None:
    before = int(time.time())
    answer = verify_user(http, "100", "alice", PASSWORD)
    status = answer["status"]
    assert set(status) >= STATUS_KEYS
    assert status["request"] == "verifyUser"
    assert status["responseStatus"] == "ok"
    assert status["errorCode"] == 0
    assert before <= status["requestUnixTime"] <= int(time.time())
    assert (status["recordsTotal"], status["recordsInResponse"]) == (1, 1)
    (record,) = answer["records"]
    assert set(record) == {"userID", "userName", "sessionKey", "sessionLength", "identityToken", "token"}
    assert isinstance(record["userID"], str)
    assert record["userName"] == "alice"
    assert len(record["sessionKey"]) >= 40
    assert record["sessionLength"] == 3600


def test_verify_user_takes_json_and_cuts_long_sessions(http: httpx.Client, alice: None) -> None:
    answer = http.post(
        "/api/",
        json={
            "request": "verifyUser",
            "clientCode": "100",
            "username": "alice",
            "password": PASSWORD,
            "sessionLength": 100000,
        },
    ).json()
    assert answer["status"]["errorCode"] == 0
    assert answer["records"][0]["sessionLength"] == 86400
    info = key_info(http, "100", answer["records"][0]["sessionKey"])["records"][0]
    assert int(info["expireUnixTime"]) - int(info["creationUnixTime"]) == 86400


@pytest.mark.parametrize(
    ("client_code", "username", "password", "code"),
    [
        ("100", "alice", "wrong password", accounts.LOGIN_FAILED),
        ("100", "bob", PASSWORD, accounts.LOGIN_FAILED),
        ("999", "alice", PASSWORD, accounts.LOGIN_FAILED),
        ("100", "", PASSWORD, accounts.CREDENTIALS_MISSING),
        ("100", "alice", "", accounts.CREDENTIALS_MISSING),
    ],
)
def test_failed_logins(
    http: httpx.Client, alice: None, client_code: str, username: str, password: str, code: int
) -> None:
    assert_error(verify_user(http, client_code, username, password), code)


def test_unknown_or_missing_request_is_1006(http: httpx.Client) -> None:
    assert_error(http.post("/api/", data={"request": "getProducts"}).json(), 1006)
    assert_error(http.post("/api/", data={"clientCode": "100"}).json(), 1006)


def test_bad_session_length_names_the_field(http: httpx.Client, alice: None) -> None:
    answer = verify_user(http, "100", "alice", PASSWORD, sessionLength="forever")
    assert_error(answer, 1016)
    assert answer["status"]["errorField"] == "sessionLength"


def test_session_key_info(http: httpx.Client, alice: None) -> None:
    key = verify_user(http, "100", "alice", PASSWORD, sessionLength="600")["records"][0]["sessionKey"]
    answer = key_info(http, "100", key)
    assert answer["status"]["errorCode"] == 0
    (record,) = answer["records"]
    assert set(record) == {"creationUnixTime", "expireUnixTime"}
    assert isinstance(record["creationUnixTime"], str)
    assert int(record["expireUnixTime"]) - int(record["creationUnixTime"]) == 600
    assert_error(key_info(http, "100", key + "x"), accounts.SESSION_INVALID)
    assert_error(key_info(http, "100", ""), accounts.SESSION_INVALID)
    assert_error(key_info(http, "200", key), accounts.SESSION_INVALID)


def test_expired_session_key_is_1054(http: httpx.Client, settings: Settings, alice: None) -> None:
    key = accounts.new_session_key()

    async def expired() -> None:
        store = await open_store(settings.database_url)
        user = await store.find_user("100", "alice")
        assert user is not None
        now = now_ms()
        session = Session(accounts.hash_session_key(key), user.id, "100", now - 7_200_000, now - 3_600_000)
        await store.create_session(session, purge_expired_before_ms=0)
        await store.close()

    run(expired())
    assert_error(key_info(http, "100", key), accounts.SESSION_EXPIRED)


def test_only_hashes_are_kept(http: httpx.Client, settings: Settings, alice: None) -> None:
    key = verify_user(http, "100", "alice", PASSWORD)["records"][0]["sessionKey"]
    with sqlite3.connect(sqlite_file(settings)) as db:
        hashes = [bytes(h) for (h,) in db.execute("SELECT key_hash FROM sessions")]
        (password_hash,) = db.execute("SELECT password_hash FROM users").fetchone()
    assert hashes == [hashlib.sha256(key.encode()).digest()]
    assert password_hash.startswith("$argon2id$")
    assert PASSWORD not in password_hash
    for path in sqlite_file(settings).parent.glob("wm.db*"):
        content = path.read_bytes()
        assert key.encode() not in content
        assert PASSWORD.encode() not in content


@pytest.fixture
def strict_server(settings: Settings, clock: FakeClock) -> Iterator[httpx.Client]:
    strict = settings.model_copy(update={"login_max_failures": 3, "login_block_s": 1})
    with serving(strict, clock=clock) as live:
        create_account(strict, "100", "alice", PASSWORD)
        with httpx.Client(base_url=live.url, timeout=10) as client:
            yield client


def test_repeated_failures_block_the_user_for_a_while(strict_server: httpx.Client, clock: FakeClock) -> None:
    http = strict_server
    for _ in range(3):
        assert_error(verify_user(http, "100", "alice", "wrong password"), accounts.LOGIN_FAILED)
    # Blocked: even the right password is refused, and an unknown user is treated alike.
    assert_error(verify_user(http, "100", "alice", PASSWORD), accounts.USER_BLOCKED)
    for _ in range(3):
        verify_user(http, "100", "nobody", "whatever1")
    assert_error(verify_user(http, "100", "nobody", "whatever1"), accounts.USER_BLOCKED)
    # Another user of the client is not blocked.
    assert_error(verify_user(http, "100", "carol", PASSWORD), accounts.LOGIN_FAILED)
    clock.advance(1100)  # past the 1 s block
    assert verify_user(http, "100", "alice", PASSWORD)["status"]["errorCode"] == 0


def test_a_success_clears_the_failures(strict_server: httpx.Client) -> None:
    http = strict_server
    for _ in range(2):
        verify_user(http, "100", "alice", "wrong password")
    assert verify_user(http, "100", "alice", PASSWORD)["status"]["errorCode"] == 0
    for _ in range(2):
        assert_error(verify_user(http, "100", "alice", "wrong password"), accounts.LOGIN_FAILED)
    assert verify_user(http, "100", "alice", PASSWORD)["status"]["errorCode"] == 0


def test_tries_made_at_once_cannot_get_past_the_limit(strict_server: httpx.Client) -> None:
    from concurrent.futures import ThreadPoolExecutor

    url = str(strict_server.base_url)

    def one(i: int) -> int:
        with httpx.Client(base_url=url, timeout=30) as http:
            return int(verify_user(http, "100", "alice", f"wrong {i}")["status"]["errorCode"])

    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(one, range(20)))
    assert codes.count(accounts.LOGIN_FAILED) == 3  # login_max_failures
    assert codes.count(accounts.USER_BLOCKED) == 17


def test_the_block_slides_and_refused_tries_do_not_extend_it(strict_server: httpx.Client, clock: FakeClock) -> None:
    http = strict_server
    for _ in range(3):
        assert_error(verify_user(http, "100", "alice", "wrong password"), accounts.LOGIN_FAILED)
    clock.advance(500)
    # Refused while blocked, right or wrong: neither is a failure, so neither keeps the block going.
    assert_error(verify_user(http, "100", "alice", "wrong password"), accounts.USER_BLOCKED)
    assert_error(verify_user(http, "100", "alice", PASSWORD), accounts.USER_BLOCKED)
    clock.advance(501)  # the three failures are now older than the 1 s block
    assert verify_user(http, "100", "alice", PASSWORD)["status"]["errorCode"] == 0


def test_one_wrong_try_now_and_then_never_blocks(strict_server: httpx.Client, clock: FakeClock) -> None:
    http = strict_server
    for _ in range(8):  # never three within one second
        assert_error(verify_user(http, "100", "alice", "wrong password"), accounts.LOGIN_FAILED)
        clock.advance(600)
    assert verify_user(http, "100", "alice", PASSWORD)["status"]["errorCode"] == 0


def test_correct_logins_made_at_once_are_never_blocked(strict_server: httpx.Client) -> None:
    from concurrent.futures import ThreadPoolExecutor

    url = str(strict_server.base_url)

    def one(_: int) -> int:
        with httpx.Client(base_url=url, timeout=30) as http:
            return int(verify_user(http, "100", "alice", PASSWORD)["status"]["errorCode"])

    with ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(one, range(12)))
    assert codes == [0] * 12  # login_max_failures is 3


def test_names_that_cannot_exist_fail_without_storing_anything(http: httpx.Client, settings: Settings) -> None:
    answer = verify_user(http, "1" * 50_000, "u" * 1000, "x")
    assert_error(answer, accounts.LOGIN_FAILED)
    assert_error(verify_user(http, "100", "u" * 256, "x"), accounts.LOGIN_FAILED)
    with sqlite3.connect(sqlite_file(settings)) as db:
        assert db.execute("SELECT count(*) FROM login_failures").fetchone() == (0,)


def test_an_expired_key_stays_expired_after_other_logins(http: httpx.Client, settings: Settings, alice: None) -> None:
    test_expired_session_key_is_1054(http, settings, None)
    key = verify_user(http, "100", "alice", PASSWORD)["records"][0]["sessionKey"]
    assert key_info(http, "100", key)["status"]["errorCode"] == 0
    with sqlite3.connect(sqlite_file(settings)) as db:
        assert db.execute("SELECT count(*) FROM sessions WHERE expires_at < ?", (now_ms(),)).fetchone() == (1,)


@pytest.mark.parametrize(
    ("request_kwargs", "field"),
    [
        ({"files": {"f": ("a.txt", b"x")}, "data": {"request": "verifyUser"}}, "body"),
        ({"content": b"--x\r\nbroken", "headers": {"Content-Type": "multipart/form-data"}}, "body"),
        ({"content": b"[1]", "headers": {"Content-Type": "application/json"}}, "body"),
        ({"content": b"{nope", "headers": {"Content-Type": "application/json"}}, "body"),
        ({"json": {"request": "verifyUser", "clientCode": "100", "username": {"a": 1}, "password": "x"}}, "username"),
        (
            {"data": {"request": "verifyUser", "clientCode": "100", "username": "alice", "password": "x" * 70_000}},
            "body",
        ),
        (
            {
                "data": {
                    "request": "verifyUser",
                    "clientCode": "100",
                    "username": "alice",
                    "password": PASSWORD,
                    "sessionLength": " 60 ",
                }
            },
            "sessionLength",
        ),
    ],
)
def test_malformed_calls_are_answered_in_erplys_shape(
    http: httpx.Client, alice: None, request_kwargs: dict[str, Any], field: str
) -> None:
    answer = http.post("/api/", **request_kwargs)
    assert answer.status_code == 200
    body = answer.json()
    assert_error(body, 1016)
    assert body["status"]["errorField"] == field


def test_session_key_info_needs_the_keys_own_client_code(http: httpx.Client, alice: None) -> None:
    key = verify_user(http, "100", "alice", PASSWORD)["records"][0]["sessionKey"]
    answer = http.post("/api/", data={"request": "getSessionKeyInfo", "sessionKey": key}).json()
    assert_error(answer, accounts.SESSION_INVALID)
    json_answer = http.post(
        "/api/", json={"request": "getSessionKeyInfo", "clientCode": "100", "sessionKey": key}
    ).json()
    assert json_answer["status"]["errorCode"] == 0
