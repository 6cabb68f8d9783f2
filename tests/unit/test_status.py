"""The pure parts of ``status``: credentials dropped from URLs, percentiles of a histogram, ages, the text form."""

from __future__ import annotations

import io

import pytest

from webhook_manager.domain.model import Backlog, EndpointReport, FailedWebhook
from webhook_manager.status import StatusReport, age, as_json, without_credentials, write_text
from webhook_manager.store.reports import percentile


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://example.com/hook", "https://example.com/hook"),
        ("https://user:pass@example.com/hook?x=1", "https://example.com/hook?x=1"),
        ("https://user@example.com:8443", "https://example.com:8443"),
        ("https://u:p@ss@example.com/a@b", "https://example.com/a@b"),  # the last '@' of the authority
        ("https://example.com/a@b?c=d@e#f@g", "https://example.com/a@b?c=d@e#f@g"),  # '@' past the authority
        ("http://u:p@[::1]:80/x", "http://[::1]:80/x"),
        ("http://u:p@[::1/x", "http://[::1/x"),  # not a URL urllib reads: cut all the same
        ("postgresql://wm:secret@db:5432/wm", "postgresql://db:5432/wm"),
        ("sqlite:///var/a@b.db", "sqlite:///var/a@b.db"),
        ("not a url", "not a url"),
        ("postgresql://wm@db/wm?sslmode=require&password=hunter2", "postgresql://db/wm?sslmode=require&password=***"),
        ("https://hooks.example/x?token=abc&keep=1", "https://hooks.example/x?token=***&keep=1"),
    ],
)
def test_credentials_are_dropped_from_urls(url: str, shown: str) -> None:
    assert without_credentials(url) == shown


def test_percentiles_are_nearest_rank_over_a_histogram() -> None:
    histogram = [(10, 1, 1), (20, 1, 0), (30, 1, 1), (1200, 1, 0)]  # (value, count, successes)
    assert [percentile(histogram, p) for p in (1, 25, 50, 51, 75, 99, 100)] == [10, 10, 20, 30, 30, 1200, 1200]
    hundred = [(ms, 1, 1) for ms in range(1, 101)]
    assert (percentile(hundred, 50), percentile(hundred, 99)) == (50, 99)
    assert percentile([(5, 1000, 0), (7, 9, 0), (900, 1, 0)], 99) == 5  # 1000 of 1010 at 5 ms: 99.0 %
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)


def test_ages_read_shortly() -> None:
    assert [age(s) for s in (0, 4.25, 59.9, 60, 725, 3600, 12_000, 86_400, 190_000)] == [
        "0.0 s",
        "4.2 s",
        "59.9 s",
        "1 min 0 s",
        "12 min 5 s",
        "1 h 0 min",
        "3 h 20 min",
        "1 d 0 h",
        "2 d 4 h",
    ]


def test_the_text_form_prints_what_the_store_holds_literally() -> None:
    failure = "[bold]HTTP 500[/bold] :smile:"  # no markup, no emoji codes: as the receiver said it
    report = StatusReport(
        at_ms=10_000_000,
        store="sqlite:///wm.db",
        backlog=Backlog(3, 9_000_000, 2, 1, 1, 9_500_000, 1),
        since_ms=10_000_000 - 3_600_000,
        endpoints=[EndpointReport("https://u:pw@a.example/x", 4, 3, 20, 1200, 9_990_000, failure)],
        failed=[FailedWebhook("ab" * 12, "100", "product", "insert", "https://u:pw@a.example/x", 2, failure, 1)],
        captures=[],
    )
    out = io.StringIO()
    write_text(report, out)
    text = out.getvalue()
    assert text.count(failure) == 2
    assert "pw" not in text
    assert "https://a.example/x" in text
    assert "75.0%" in text
    assert "16 min 40 s ago" in text  # the oldest pending event
    assert "no capture source has recorded anything" in text
    json = as_json(report)
    assert json["endpoints"][0]["endpoint"] == json["failed_webhooks"][0]["endpoint"] == "https://a.example/x"
    assert json["backlog"]["oldest_pending_event_age_s"] == 1000.0
    assert json["endpoints"][0]["success_rate"] == 0.75
