"""``webhook-manager status``: the installed command reads a store whose state the test made through the store's
API, and reports it as tables or as one JSON object, without credentials, and never changes the store."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.acceptance.cli import wm
from tests.conftest import run
from tests.databases import postgres_database
from tests.integration.test_store_contract import forming
from webhook_manager.domain.ids import new_id
from webhook_manager.domain.model import Action, AttemptOutcome, Configuration
from webhook_manager.domain.timefmt import now_ms, rfc3339_ms
from webhook_manager.store import open_store

A = "https://a.example/hook"
B = "https://hook:s3cret-pass@b.example/hook"
B_SHOWN = "https://b.example/hook"


@dataclass
class Made:
    """The state :func:`make_state` left in the store."""

    now: int
    failed_id: str


def make_state(url: str) -> Made:
    """Two endpoints, three webhooks each, tried in the last minute: a's first sent in 40 ms, its second failed
    for good in 1500 ms (HTTP 500), its third in flight; b's first sent in 12 ms, its second failed in 7 ms
    (connection refused, to be tried again much later), its third due since it was made. Then three events not
    yet in webhooks, and a capture source at position 42."""
    now = now_ms()

    async def go() -> str:
        store = await open_store(url)
        try:
            await store.migrate()
            for at, endpoint in enumerate((A, B)):
                await store.create_configuration(
                    Configuration(new_id(), "100", "product", Action.INSERT, endpoint, "s", False, at, at)
                )
            three = orjson.dumps([{"rowId": i, "timestamp": "2020-01-01 00:00:00", "data": None} for i in range(3)])
            await store.record_events("100", "product", "insert", three, 3, now - 60_000)
            assert await store.form_webhooks(forming(max_events=1), now - 50_000) == (6, None)
            claimed = await store.claim_due_webhooks(now - 40_000, 100, 10**7, {B: 8}, 10)  # b: two of three
            a = [w for w in claimed if w.endpoint == A]
            b = [w for w in claimed if w.endpoint == B]
            assert (len(a), len(b)) == (3, 2)
            await store.record_attempts(
                [
                    AttemptOutcome(a[0].seq, now - 30_000, 40, 200, "", True, None),
                    AttemptOutcome(a[1].seq, now - 20_000, 1500, 500, "HTTP 500", False, None),
                    AttemptOutcome(b[0].seq, now - 30_000, 12, 200, "", True, None),
                    AttemptOutcome(b[1].seq, now - 10_000, 7, None, "connection refused", False, now + 10**8),
                ]
            )
            await store.record_events("100", "product", "insert", three, 3, now - 2000)
            await store.record_captured("100", "sqlite:app.db", None, "42", [], now - 5000, committed_ms=now - 8000)
            return a[1].id
        finally:
            await store.close()

    return Made(now, run(go()))


def status(workdir: Path, url: str, *args: str) -> Any:
    return wm(workdir, "status", *args, env={"WEBHOOK_MANAGER_DATABASE_URL": url})


def assert_reported(answer: dict[str, Any], made: Made, store_shown: str) -> None:
    """``status --json`` says exactly what :func:`make_state` made (ages as far as the clock moved since)."""
    now = made.now
    at = answer.pop("at")
    assert rfc3339_ms(now) <= at
    assert answer.pop("endpoints_since") <= rfc3339_ms(now - 3_600_000 + 60_000)
    backlog = answer["backlog"]
    for key, made_ago_s in [("oldest_pending_event_age_s", 2), ("oldest_due_age_s", 50)]:
        assert made_ago_s <= backlog.pop(key) < made_ago_s + 60, key
    [capture] = answer["capture_sources"]
    assert 5 <= capture.pop("updated_age_s") < 65
    assert answer == {
        "store": store_shown,
        "backlog": {
            "pending_events": 3,
            "oldest_pending_event_at": rfc3339_ms(now - 2000),
            "webhooks_pending": 2,  # a's in flight, b's due
            "webhooks_retrying": 1,
            "webhooks_due": 1,
            "webhooks_in_flight": 1,
            "oldest_due_at": rfc3339_ms(now - 50_000),
        },
        "endpoints": [
            {
                "endpoint": A,
                "tries": 2,
                "successes": 1,
                "success_rate": 0.5,
                "p50_ms": 40,
                "p99_ms": 1500,
                "last_failure_at": rfc3339_ms(now - 20_000),
                "last_failure": "HTTP 500",
            },
            {
                "endpoint": B_SHOWN,
                "tries": 2,
                "successes": 1,
                "success_rate": 0.5,
                "p50_ms": 7,
                "p99_ms": 12,
                "last_failure_at": rfc3339_ms(now - 10_000),
                "last_failure": "connection refused",
            },
        ],
        "failed_webhooks": [
            {
                "id": made.failed_id,
                "client_code": "100",
                "table": "product",
                "action": "insert",
                "endpoint": A,
                "tries": 1,
                "last_failure": "HTTP 500",
                "failed_at": rfc3339_ms(now - 20_000 + 1500),
            }
        ],
        "capture_sources": [
            {
                "source": "sqlite:app.db",
                "client_code": "100",
                "position": "42",
                "updated_at": rfc3339_ms(now - 5000),
                "lag_s": 3.0,  # its newest change was 3 s old when it was recorded
            }
        ],
    }


def test_status_json_reports_the_backlog_endpoints_failures_and_capture(workdir: Path) -> None:
    url = f"sqlite:///{workdir / 'wm.db'}"
    made = make_state(url)
    done = status(workdir, url, "--json")
    assert (done.returncode, done.stderr) == (0, "")
    assert "s3cret" not in done.stdout
    assert_reported(orjson.loads(done.stdout), made, url)


def test_status_prints_tables_without_credentials(workdir: Path) -> None:
    url = f"sqlite:///{workdir / 'wm.db'}"
    made = make_state(url)
    done = status(workdir, url)
    assert (done.returncode, done.stderr) == (0, "")
    out = done.stdout
    assert out.startswith(f"webhook-manager status of {url} at ")
    for heading in ("Backlog", "Endpoints, last hour", "Failed webhooks (the last 20)", "Capture sources"):
        assert heading in out
    for shown in (A, B_SHOWN, "50.0%", "40 ms", "1500 ms", "7 ms", "12 ms", "HTTP 500", "connection refused"):
        assert shown in out
    assert made.failed_id in out
    assert rfc3339_ms(made.now - 20_000 + 1500) in out  # when it failed
    assert "sqlite:app.db" in out
    assert "s3cret" not in out
    assert "hook:" not in out
    lines = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 2}
    assert lines["events pending"].split("│")[2].strip() == "3"
    assert lines["webhooks in flight"].split("│")[2].strip() == "1"


def _tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT name FROM sqlite_master")]


def test_a_store_that_does_not_exist_or_has_no_schema_is_named_not_made(workdir: Path) -> None:
    missing = workdir / "var" / "wm.db"
    done = status(workdir, f"sqlite:///{missing}")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        f"webhook-manager: error: no store at {missing} (database_url): run `webhook-manager migrate` to create it\n"
    )
    assert not missing.parent.exists()  # nothing created

    empty = workdir / "empty.db"
    sqlite3.connect(empty).close()
    done = status(workdir, f"sqlite:///{empty}", "--json")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        f"webhook-manager: error: the store sqlite:///{empty} has no schema yet: run `webhook-manager migrate` first\n"
    )
    assert _tables(empty) == []  # not migrated

    not_a_database = workdir / "notes.txt"
    not_a_database.write_text("x" * 4096)
    done = status(workdir, f"sqlite:///{not_a_database}")
    assert done.returncode == 1
    assert done.stderr.startswith("webhook-manager: error: store unavailable: ")
    assert done.stderr.count("\n") == 1


def test_bad_settings_are_one_line_and_exit_2(workdir: Path) -> None:
    done = status(workdir, "mysql://db/app")
    assert done.returncode == 2
    assert done.stderr.startswith("webhook-manager: error: setting WEBHOOK_MANAGER_DATABASE_URL")
    assert done.stderr.count("\n") == 1
    done = wm(workdir, "status", "--config", str(workdir / "nowhere.toml"))
    assert done.returncode == 2
    assert done.stderr.startswith("webhook-manager: error: ")
    assert done.stderr.count("\n") == 1


@pytest.mark.postgres
def test_status_json_on_postgresql(workdir: Path) -> None:
    with postgres_database() as url:
        made = make_state(url)
        done = status(workdir, url, "--json")
        assert (done.returncode, done.stderr) == (0, "")
        scheme, _, rest = url.partition("://")
        assert_reported(orjson.loads(done.stdout), made, f"{scheme}://{rest.rpartition('@')[2]}")
    with postgres_database(migrated=False) as blank:
        done = status(workdir, blank)
        assert (done.returncode, done.stdout) == (1, "")
        assert done.stderr.startswith("webhook-manager: error: the store postgresql://")
        assert done.stderr.endswith("has no schema yet: run `webhook-manager migrate` first\n")
        assert "@" not in done.stderr  # no user name (nor password) shown
    done = status(workdir, url)  # dropped by now
    assert done.returncode == 1
    assert done.stderr.startswith("webhook-manager: error: store unavailable: ")
    assert done.stderr.count("\n") == 1
