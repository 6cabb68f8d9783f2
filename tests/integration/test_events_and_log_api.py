"""``/v1/event`` and ``/v1/webhook`` over real HTTP, with the pipeline running and a real receiver."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import Client, create_account, serving, verify_user
from tests.receiver import ThreadedReceiver
from tests.swagger import array_of, problems, strict_definitions
from tests.waiting import wait_until
from webhook_manager.settings import Settings


@pytest.fixture(scope="module")
def definitions() -> dict[str, Any]:
    return strict_definitions()


@pytest.fixture
def receiver() -> Iterator[ThreadedReceiver]:
    r = ThreadedReceiver()
    yield r
    r.stop()


@pytest.fixture
def service(store_url: str) -> Iterator[httpx.Client]:
    settings = Settings(
        database_url=store_url,
        allow_private_endpoints=True,
        batch_linger_ms=0,
        retry_delay_s=0,
    )
    with serving(settings, run_pipeline=True) as live:
        for code in ("100", "200"):
            create_account(settings, code, "alice", "correct horse battery")
        with httpx.Client(base_url=live.url, timeout=30) as http:
            yield http


def login(http: httpx.Client, code: str) -> Client:
    answer = verify_user(http, code, "alice", "correct horse battery")
    return Client(code, answer["records"][0]["sessionKey"])


def configure(http: httpx.Client, who: Client, endpoint: str, table: str = "product", action: str = "insert") -> str:
    body = {"table": table, "action": action, "endpoint": endpoint, "secret": "mySecretWord"}
    answer = http.post("/v1/webhook-configuration", json=body, headers=who.headers)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


def post_events(http: httpx.Client, who: Client, items: list[dict[str, Any]], **envelope: Any) -> httpx.Response:
    body = {"table": "product", "action": "insert", "items": items, **envelope}
    return http.post("/v1/event", content=orjson.dumps(body), headers=who.headers)


def events(http: httpx.Client, who: Client, **params: Any) -> httpx.Response:
    return http.get("/v1/event", params={"table": "product", "action": "insert", **params}, headers=who.headers)


def test_recorded_events_become_webhooks_and_show_in_the_logs(
    service: httpx.Client, receiver: ThreadedReceiver, definitions: dict[str, Any]
) -> None:
    alice = login(service, "100")
    configure(service, alice, receiver.url("/status/200"))
    answer = post_events(service, alice, [{"rowId": i, "timestamp": "2020-01-01 00:00:00"} for i in range(150)])
    assert answer.json() == {"received": 150, "recorded": 150}
    bodies = receiver.wait_for(2)
    assert sorted(int(b["eventCount"]) for b in bodies) == [50, 100]

    def all_sent() -> list[Any] | None:
        log: list[Any] = service.get("/v1/webhook", headers=alice.headers).json()
        return log if len(log) == 2 and all(w["status"] == "sent" for w in log) else None

    log = wait_until(all_sent)
    assert not problems(definitions, array_of("models.OutputWebhook"), log)
    assert {(w["status"], w["tries"], w["lastFailure"], w["eventCount"]) for w in log} == {
        ("sent", 1, "", 100),
        ("sent", 1, "", 50),
    }
    assert {w["id"] for w in log} == {b["id"] for b in bodies}

    listed = events(service, alice, limit=200).json()
    assert not problems(definitions, array_of("models.OutputEvent"), listed)
    assert len(listed) == 100  # cut to 100
    assert [e["rowID"] for e in listed[:3]] == [149, 148, 147]  # newest first
    assert {e["status"] for e in listed} == {"processed"}
    assert listed[0]["eventDate"] == "2020-01-01T00:00:00.000Z"
    assert len(events(service, alice).json()) == 20

    detail = service.get(f"/v1/webhook/{bodies[0]['id']}", headers=alice.headers).json()
    got = next(r for r in receiver.received if r.json["id"] == bodies[0]["id"])
    assert detail["payload"].encode() == got.body
    assert [(a["httpStatus"], a["error"]) for a in detail["attempts"]] == [(200, "")]
    assert set(detail["attempts"][0]) == {"at", "durationMs", "httpStatus", "error"}


def test_webhook_log_filters_and_limits(service: httpx.Client, receiver: ThreadedReceiver) -> None:
    alice = login(service, "100")
    configure(service, alice, receiver.url("/status/200"))
    configure(service, alice, receiver.url("/status/200"), table="invoice", action="delete")
    post_events(service, alice, [{"rowId": 1}])
    post_events(service, alice, [{"rowId": 2}], table="invoice", action="delete")
    receiver.wait_for(2)

    def get(**params: str) -> httpx.Response:
        return service.get("/v1/webhook", params=params, headers=alice.headers)

    assert [w["table"] for w in get().json()] == ["invoice", "product"]  # newest first
    assert [w["table"] for w in get(table="product").json()] == ["product"]
    assert [w["action"] for w in get(action="delete").json()] == ["delete"]
    assert get(table="product", action="delete").json() == []
    assert len(get(limit="1").json()) == 1
    for bad in ("0", "-1", "many"):
        answer = get(limit=bad)
        assert answer.status_code == 400
        assert "limit" in answer.json()["error"]


def test_get_events_needs_table_and_action(service: httpx.Client) -> None:
    alice = login(service, "100")
    for params, field in [({"action": "insert"}, "table"), ({"table": "product"}, "action")]:
        answer = service.get("/v1/event", params=params, headers=alice.headers)
        assert answer.status_code == 400
        assert field in answer.json()["error"]
    assert events(service, alice, limit=0).status_code == 400


def test_a_bad_item_is_400_naming_it_and_nothing_is_stored(service: httpx.Client, receiver: ThreadedReceiver) -> None:
    alice = login(service, "100")
    configure(service, alice, receiver.url("/status/200"))
    answer = post_events(service, alice, [{"rowId": 1}, {"rowId": 2}, {"rowId": "3"}])
    assert answer.status_code == 400
    assert "items[2].rowId" in answer.json()["error"]
    assert post_events(service, alice, [{"timestamp": "nope"}]).json()["error"].startswith("items[0].timestamp")
    assert service.post("/v1/event", content=b"{", headers=alice.headers).status_code == 400
    deep: Any = None
    for _ in range(252):
        deep = [deep]
    body = {"table": "product", "action": "insert", "items": [{"rowId": 1, "data": deep}]}
    too_deep = service.post("/v1/event", content=json.dumps(body).encode(), headers=alice.headers)  # past orjson
    assert too_deep.status_code == 400
    assert too_deep.json()["error"].startswith("items")
    early = post_events(service, alice, [{"timestamp": "0001-01-01T00:00:00+01:00"}])
    assert early.status_code == 400
    assert "items[0].timestamp" in early.json()["error"]
    assert events(service, alice).json() == []


def test_events_without_a_matching_configuration_are_dropped(service: httpx.Client) -> None:
    alice = login(service, "100")
    assert post_events(service, alice, [{"rowId": 1}] * 3).json() == {"received": 3, "recorded": 0}
    assert events(service, alice).json() == []


def test_10000_items_per_call_and_413_past_16_mib(service: httpx.Client, receiver: ThreadedReceiver) -> None:
    alice = login(service, "100")
    configure(service, alice, receiver.url("/status/200"))
    assert post_events(service, alice, [{"rowId": i} for i in range(10_000)]).json() == {
        "received": 10_000,
        "recorded": 10_000,
    }
    answer = post_events(service, alice, [{"rowId": 1}] * 10_001)
    assert answer.status_code == 400
    assert "items" in answer.json()["error"]
    huge = post_events(service, alice, [{"rowId": 1, "data": "x" * 2000}] * 9000)  # ~18 MB
    assert huge.status_code == 413
    assert "error" in huge.json()
    assert len(receiver.wait_for(100)) == 100


def test_clients_see_only_their_own_events_and_webhooks(service: httpx.Client, receiver: ThreadedReceiver) -> None:
    alice, bob = login(service, "100"), login(service, "200")
    configure(service, alice, receiver.url("/status/200"))
    post_events(service, alice, [{"rowId": 1}])
    (body,) = receiver.wait_for(1)
    assert post_events(service, bob, [{"rowId": 1}]).json()["recorded"] == 0
    assert service.get("/v1/webhook", headers=bob.headers).json() == []
    assert events(service, bob).json() == []
    assert service.get(f"/v1/webhook/{body['id']}", headers=bob.headers).status_code == 404
    assert service.post(f"/v1/webhook/{body['id']}/resend", headers=bob.headers).status_code == 404
    assert service.post("/v1/event", json={}, headers={"clientCode": "100"}).status_code == 401
    assert service.get("/v1/webhook").status_code == 401


def test_resend_gives_a_failed_webhook_a_new_round_with_the_same_id(
    service: httpx.Client, receiver: ThreadedReceiver
) -> None:
    alice = login(service, "100")
    configure(service, alice, receiver.url("/flaky/2"))  # 500, 500, then 200
    post_events(service, alice, [{"rowId": 1}])
    failed = wait_until(
        lambda: [w for w in service.get("/v1/webhook", headers=alice.headers).json() if w["status"] == "failed"]
    )
    (webhook,) = failed
    assert (webhook["tries"], webhook["lastFailure"]) == (2, "HTTP 500")  # RETRIES=1: two tries
    answer = service.post(f"/v1/webhook/{webhook['id']}/resend", headers=alice.headers)
    assert answer.status_code == 200
    assert answer.json()["id"] == webhook["id"]
    sent = wait_until(
        lambda: [w for w in service.get("/v1/webhook", headers=alice.headers).json() if w["status"] == "sent"]
    )
    assert sent[0]["tries"] == 3
    assert len({r.body for r in receiver.received}) == 1  # the same body, id and hmac on every try
    again = service.post(f"/v1/webhook/{webhook['id']}/resend", headers=alice.headers)
    assert again.status_code == 409
    assert "sent" in again.json()["error"]
    assert service.post("/v1/webhook/0123456789abcdef01234567/resend", headers=alice.headers).status_code == 404
    assert service.get("/v1/webhook/nothex", headers=alice.headers).status_code == 400


# orjson's compact form, which the body keeps: integers beyond 64 bits (23 digits, negative, nested in objects
# and arrays, and the first ones past each end) beside the last ones within, a float, and digits in a string.
BIG_NUMBERS = (
    b'{"big":12345678901234567890123,"negative":-12345678901234567890123,'
    b'"nested":{"list":[1,98765432109876543210987654321,{"deep":[-9223372036854775809]}]},'
    b'"edges":[18446744073709551615,18446744073709551616,-9223372036854775808],'
    b'"price":1.5,"code":"123456789012345678901234"}'
)


def test_integers_beyond_64_bits_arrive_exactly_as_recorded(service: httpx.Client, receiver: ThreadedReceiver) -> None:
    alice = login(service, "100")
    configure(service, alice, receiver.url("/status/200"))
    item = b'{"rowId":1,"timestamp":"2020-01-01 00:00:00","data":' + BIG_NUMBERS + b"}"
    body = b'{"table":"product","action":"insert","items":[' + item + b"]}"
    answer = service.post("/v1/event", content=body, headers=alice.headers)
    assert answer.json() == {"received": 1, "recorded": 1}
    receiver.wait_for(1)
    (got,) = receiver.received
    assert got.body.endswith(b'"items":[' + item + b"]}")
    shown = service.get(f"/v1/webhook/{got.headers['webhook-id']}", headers=alice.headers).json()
    assert shown["payload"].encode() == got.body
