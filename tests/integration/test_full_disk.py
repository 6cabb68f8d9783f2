"""A full disk under the SQLite store: ingest is refused before the disk is full, the pipeline keeps working
room, and freeing a little space lets every accepted event be delivered without a restart
(docs/reliability.md)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import Client, create_account, serving, verify_user
from tests.faults import filler, small_disk
from tests.receiver import ThreadedReceiver
from tests.waiting import wait_until
from webhook_manager.settings import Settings

CALL_EVENTS = 1000
DATA = "x" * 60


@pytest.fixture
def receiver() -> Iterator[ThreadedReceiver]:
    r = ThreadedReceiver()
    yield r
    r.stop()


def ingest_until_refused(http: httpx.Client, who: Client, first_row: int, most_calls: int = 2000) -> int:
    """Calls of 1000 events until one is refused (or ``most_calls`` were made); the number of events accepted.
    A refusal is a 503 with an error that says why; nothing else is allowed."""
    row = first_row
    for _ in range(most_calls):
        items = [{"rowId": r, "data": {"note": DATA}} for r in range(row, row + CALL_EVENTS)]
        body = orjson.dumps({"table": "product", "action": "insert", "items": items})
        answer = http.post("/v1/event", content=body, headers=who.headers)
        if answer.status_code != 200:
            assert answer.status_code == 503, answer.text
            assert "full" in answer.json()["error"], answer.text
            return row - first_row
        row += CALL_EVENTS
    return row - first_row


def test_after_a_full_disk_freeing_a_little_space_delivers_every_accepted_event(
    tmp_path: Path, receiver: ThreadedReceiver
) -> None:
    reserve_mb = 4
    with small_disk(tmp_path / "disk", 30) as disk:
        big, small = filler(disk / "filler-8", 8), filler(disk / "filler-4", 4)
        settings = Settings(
            database_url=f"sqlite:///{disk / 'wm.db'}",
            allow_private_endpoints=True,
            batch_linger_ms=0,
            retry_delay_s=0,
            disk_reserve_mb=reserve_mb,
        )
        create_account(settings, "100", "alice", "correct horse battery")
        with serving(settings, run_pipeline=True) as live, httpx.Client(base_url=live.url, timeout=30) as http:
            answer = verify_user(http, "100", "alice", "correct horse battery")
            alice = Client("100", answer["records"][0]["sessionKey"])
            body = {"table": "product", "action": "insert", "endpoint": receiver.url("/ok/a"), "secret": "s"}
            assert http.post("/v1/webhook-configuration", json=body, headers=alice.headers).status_code == 200

            accepted = ingest_until_refused(http, alice, 0)
            assert 0 < accepted < 2000 * CALL_EVENTS  # refused: the disk is (nearly) full
            big.unlink()
            accepted += ingest_until_refused(http, alice, accepted)
            small.unlink()
            freed_at = time.monotonic()

            def delivered() -> int:
                return len({item["rowId"] for r in receiver.received for item in r.json["items"]})

            wait_until(
                lambda: delivered() >= accepted,
                timeout=45,
                what=lambda: f"{accepted} accepted events delivered ({delivered()} so far)",
            )
            assert delivered() == accepted
            print(
                f"full disk (reserve {reserve_mb} MiB): {accepted} events accepted, all delivered"
                f" {time.monotonic() - freed_at:.1f} s after 4 MiB were freed"
            )
            wait_until(lambda: http.get("/readyz").status_code == 200, timeout=15, what="/readyz to be 200 again")
            assert ingest_until_refused(http, alice, accepted, most_calls=1) == CALL_EVENTS  # takes events again
