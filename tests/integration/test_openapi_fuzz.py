"""The OpenAPI document is true and strict: schemathesis calls every operation of the served API, logged in,
with data made from the document (valid and invalid), and checks each answer against it: no 5xx, a documented
status, content type and body, auth enforced, schema-valid input accepted and invalid input refused, 405s
with a true Allow. Then it walks the document's links (create, read, change, remove; list, read, resend).

The budget is fixed (a seed, examples per operation, steps), so CI runs the same calls each time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, cast

import httpx
import hypothesis
import orjson
import pytest
import schemathesis

from tests.conftest import create_account, serving, verify_user
from tests.databases import postgres_database
from tests.receiver import ThreadedReceiver
from tests.waiting import wait_until
from webhook_manager.api import create_app
from webhook_manager.domain.ids import is_id
from webhook_manager.settings import Settings
from webhook_manager.store import Store

SEED = 20251111
EXAMPLES = 15  # per operation, for each of the fuzzing and examples phases (the coverage phase has its own)
STATEFUL_RUNS = 10
STATEFUL_STEPS = 8
PASSWORD = "correct horse battery"
CONFIG: dict[str, Any] = {
    "seed": SEED,
    "generation": {
        "max-examples": EXAMPLES,
        "database": "none",  # the same calls every run, nothing written to disk
        # Unknown query parameters and headers are ignored, as by most HTTP APIs; not a refusal to test.
        "allow-extra-parameters": False,
        # The session's headers come from the test (below), not generated.
        "with-security-parameters": False,
    },
    # The walks are chains of valid calls; invalid input is the single operations' test.
    "phases": {"stateful": {"generation": {"mode": "positive"}}},
    "operations": [
        # Erply's API answers every call with HTTP 200 and the outcome in `status` (docs/api.md).
        {"include-path": "/api/", "checks": {"negative_data_rejection": {"expected-statuses": ["200"]}}}
    ],
}


def _document() -> dict[str, Any]:
    # made from the routes alone: no handler runs, so no store is needed
    return create_app(Settings(), cast(Store, None)).openapi()


schema = schemathesis.openapi.from_dict(_document(), config=schemathesis.Config.from_dict(CONFIG))


@schema.hook
def map_body(context: schemathesis.HookContext, body: Any) -> Any:
    """A row id is a JSON integer written as one (504, not 504.0), as Erply's Go server also wants it; JSON
    Schema counts 504.0 as an integer, so the fuzzer's integral floats are written as integers."""
    operation = context.operation
    items = body.get("items") if isinstance(body, dict) else None
    if operation is not None and operation.label == "POST /v1/event" and isinstance(items, list):
        for item in items:  # (a negative case may make ``items`` anything at all)
            row_id = item.get("rowId") if isinstance(item, dict) else None
            if isinstance(row_id, float) and row_id.is_integer():
                item["rowId"] = int(row_id)
    return body


@dataclass
class Served:
    """The API with a logged-in client that has a sent and a failed webhook."""

    url: str
    headers: dict[str, str]
    webhook_id: str
    """One of those webhooks."""


def known_before(case: schemathesis.Case[Any], served: Served) -> None:
    """The log's ``before`` must be one of the client's webhooks, which is beyond what a pattern can say (as which
    endpoint hosts are private, docs/api.md): a well-formed one becomes the id of a webhook the client has, so
    that valid input is accepted; a malformed one is kept, to be refused."""
    query = case.query
    before = query.get("before") if isinstance(query, dict) else None
    if case.operation.label == "GET /v1/webhook" and isinstance(before, str) and is_id(before):
        query["before"] = served.webhook_id


def _seed_webhooks(settings: Settings) -> str:
    """Two webhooks of client 100, one sent and one failed, so the log's answers (and the delivery reports) have
    rows to check; returns the id of one."""
    receiver = ThreadedReceiver()
    try:
        with serving(settings, run_pipeline=True) as live, httpx.Client(base_url=live.url, timeout=10) as http:
            key = verify_user(http, "100", "alice", PASSWORD)["records"][0]["sessionKey"]
            headers = {"clientCode": "100", "sessionKey": key}
            for table, status in (("sent", 200), ("failed", 500)):
                configuration = {"table": table, "action": "insert", "endpoint": receiver.url(f"/status/{status}")}
                answer = http.post("/v1/webhook-configuration", json={**configuration, "secret": "s"}, headers=headers)
                assert answer.status_code == 200, answer.text
                body = {"table": table, "action": "insert", "items": [{"rowId": 1, "data": {"n": 1}}]}
                assert http.post("/v1/event", content=orjson.dumps(body), headers=headers).status_code == 200

            def both_done() -> list[Any] | None:
                log: list[Any] = http.get("/v1/webhook", headers=headers).json()
                return log if sorted(w["status"] for w in log) == ["failed", "sent"] else None

            return str(wait_until(both_done, what="a sent and a failed webhook")[0]["id"])
    finally:
        receiver.stop()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with _store_url(request.param, tmp_path_factory) as url:
        # Private endpoints allowed: which hosts are private is beyond what a pattern can say (docs/api.md).
        settings = Settings(
            database_url=url, allow_private_endpoints=True, batch_linger_ms=0, retries=0, retry_delay_s=0
        )
        create_account(settings, "100", "alice", PASSWORD)
        webhook_id = _seed_webhooks(settings)
        # The fuzzer's webhooks are never sent: no pipeline here.
        with serving(settings) as live, httpx.Client(base_url=live.url, timeout=10) as http:
            key = verify_user(http, "100", "alice", PASSWORD)["records"][0]["sessionKey"]
            assert http.get("/api/docs/openapi.json").json() == _document()  # the document fuzzed is served
            yield Served(live.url, {"clientCode": "100", "sessionKey": key}, webhook_id)


def _store_url(kind: str, tmp_path_factory: pytest.TempPathFactory) -> AbstractContextManager[str]:
    if kind == "postgres":
        return postgres_database()
    return nullcontext(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'wm.db'}")


@schema.parametrize()
def test_every_operation_answers_as_documented(case: schemathesis.Case[Any], served: Served) -> None:
    known_before(case, served)
    case.call_and_validate(base_url=served.url, headers=served.headers)


def test_the_links_lead_where_they_say(served: Served) -> None:
    class Walk(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: schemathesis.Case[Any]) -> None:
            known_before(case, served)

        def get_call_kwargs(self, case: schemathesis.Case[Any]) -> dict[str, Any]:
            return {"base_url": served.url, "headers": served.headers}

    Walk.run(
        settings=hypothesis.settings(
            max_examples=STATEFUL_RUNS,
            stateful_step_count=STATEFUL_STEPS,
            database=None,
            deadline=None,
            derandomize=True,
        )
    )
