"""The Grafana dashboard (docs/grafana/webhook-manager.json) queries only metrics the process exports, and
every metric the process exports is on it (or listed below with the reason it is not)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from prometheus_client.parser import text_string_to_metric_families

from webhook_manager.domain.model import Backlog, NewWebhook
from webhook_manager.observability.metrics import CaptureState, Metrics, StoreGauges
from webhook_manager.store import Store

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "webhook-manager.json"
METRIC_NAME = re.compile(r"\bwebhook_manager_[a-z0-9_]+")
NOT_ON_DASHBOARD: dict[str, str] = {}
"""Metric families (as the exposition names them, without ``_total``) left off the dashboard on purpose, each
with its reason. Empty: every metric the process exports is graphed."""
PANELS_WITHOUT_QUERIES = {"row"}
"""Panel types that only group other panels and so have no targets."""
DATASOURCE = "${datasource}"
BACKLOG = Backlog(
    pending_events=3,
    oldest_pending_event_ms=1_000,
    webhooks_pending=2,
    webhooks_retrying=1,
    webhooks_due=1,
    oldest_due_ms=2_000,
    webhooks_in_flight=1,
)


class _Store:
    """The one store method the exposition reads."""

    async def backlog(self, now_ms: int) -> Backlog:
        return BACKLOG


def _webhook(table: str, events: int) -> NewWebhook:
    return NewWebhook(
        id="0" * 24,
        configuration_id="1" * 24,
        client_code="100",
        table=table,
        action="insert",
        endpoint="https://example.com/hooks",
        secret="s",
        event_count=events,
        payload=b"{}",
        recorded_at_ms=1_000,
    )


async def _exposed(endpoint_host: bool) -> dict[str, set[str]]:
    """Every metric family a real registry exposes after some activity, with its sample names."""
    m = Metrics(endpoint_host=endpoint_host)
    m.events_in("api", 5, 3)
    m.events_in("capture", 2, 2)
    m.formed([_webhook("product", 2), _webhook("invoice", 100)])
    m.try_ended("success", 0.1, "example.com", first_age_s=0.2, ended="sent")
    m.try_ended("http_5xx", 0.3, "example.org", first_age_s=None, ended="failed")
    m.changes_captured("sqlite app.db", 3)
    m.watch_capture("sqlite app.db", CaptureState(lambda: 0.5, lambda: 1))
    m.watch_in_flight(lambda: 2)
    text = (await m.exposition(cast(Store, _Store()), lambda: 5_000)).decode()
    return {f.name: {s.name for s in f.samples} for f in text_string_to_metric_families(text)}


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, also those inside collapsed rows."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _exprs(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression: panel targets and template variable queries."""
    exprs = [t["expr"] for p in _panels(dashboard) for t in p.get("targets", []) if "expr" in t]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]
            exprs.append(query["query"] if isinstance(query, dict) else query)
            exprs.append(var.get("definition", ""))
    return exprs


def _used(dashboard: dict[str, Any]) -> set[str]:
    return {name for expr in _exprs(dashboard) for name in METRIC_NAME.findall(expr)}


def test_every_panel_has_a_title_and_a_query() -> None:
    dashboard = _dashboard()
    assert dashboard["schemaVersion"] >= 36
    ids = [p["id"] for p in _panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in _panels(dashboard):
        assert panel.get("title"), f"panel {panel['id']} has no title"
        if panel["type"] in PANELS_WITHOUT_QUERIES:
            continue
        exprs = [t.get("expr") for t in panel.get("targets", [])]
        assert exprs, f"panel {panel['title']!r} has no target"
        assert all(exprs), f"panel {panel['title']!r} has a target without an expr"
        assert panel["datasource"]["uid"] == DATASOURCE, panel["title"]
        assert all(t["datasource"]["uid"] == DATASOURCE for t in panel["targets"]), panel["title"]


def test_datasource_and_filter_variables() -> None:
    variables = {v["name"]: v for v in _dashboard()["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert {"job", "instance"} <= variables.keys()
    for expr in _exprs(_dashboard()):
        if "label_values" not in expr and expr:
            assert 'instance=~"$instance"' in expr, f"not filtered by $instance: {expr}"


def _unknown(dashboard: dict[str, Any], families: dict[str, set[str]]) -> list[str]:
    """Metric names the dashboard queries that are no sample of ``families``."""
    samples = set().union(*families.values())
    return sorted(_used(dashboard) - samples)


@pytest.mark.parametrize("endpoint_host", [False, True])
async def test_every_metric_in_a_query_is_exposed(endpoint_host: bool) -> None:
    unknown = _unknown(_dashboard(), await _exposed(endpoint_host))
    assert not unknown, f"the dashboard queries metrics the process does not expose: {unknown}"


async def test_every_exposed_metric_is_on_the_dashboard() -> None:
    used = _used(_dashboard())
    families = await _exposed(endpoint_host=False)
    assert set(NOT_ON_DASHBOARD) <= families.keys(), "NOT_ON_DASHBOARD names a metric that no longer exists"
    missing = sorted(f for f, names in families.items() if not names & used and f not in NOT_ON_DASHBOARD)
    assert not missing, f"metrics on no panel (graph them, or list them in NOT_ON_DASHBOARD with a reason): {missing}"


def test_store_gauges_are_not_summed() -> None:
    """Every process of a store shows the same store-level gauges: summing them would count the backlog once per
    process."""
    gauges = StoreGauges()
    gauges.update(BACKLOG, 5_000)
    store_level = {family.name for family in gauges.collect()}
    assert store_level
    for expr in _exprs(_dashboard()):
        if set(METRIC_NAME.findall(expr)) & store_level:
            assert "max" in expr, f"a store-level gauge not aggregated with max: {expr}"
            assert "sum" not in expr, f"a store-level gauge summed: {expr}"


async def test_a_misspelt_metric_is_caught() -> None:
    dashboard = _dashboard()
    panel = next(p for p in _panels(dashboard) if p.get("targets"))
    panel["targets"][0]["expr"] = 'sum(rate(webhook_manager_trys_total{instance=~"$instance"}[5m]))'
    assert _unknown(dashboard, await _exposed(endpoint_host=False)) == ["webhook_manager_trys_total"]
