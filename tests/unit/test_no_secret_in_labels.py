"""A database password, wherever a capture source's DSN carries it (user info or query), never reaches a log
line, a metric label or the status report."""

from __future__ import annotations

import io
import logging

import orjson
from prometheus_client import generate_latest

from webhook_manager.capture.spec import CaptureSpec
from webhook_manager.observability.logs import JsonLines, TextLines, where
from webhook_manager.observability.metrics import Metrics
from webhook_manager.status import without_credentials

DSN = "postgresql://app:s3cr3t-user-pw@db:5432/shop?sslmode=require&password=hunter2&sslpassword=k3y-pw"
SECRETS = ("s3cr3t-user-pw", "hunter2", "k3y-pw")


def spec() -> CaptureSpec:
    return CaptureSpec(kind="postgres", dsn=DSN, client_code="100", tables=("product",))


def test_a_sources_description_and_label_hide_every_password() -> None:
    for shown in (spec().describe(), spec().label):
        assert not [s for s in SECRETS if s in shown], shown
        assert "db:5432/shop" in shown
    assert spec().label.endswith("slot webhook_manager_100")


def test_log_lines_in_both_formats_hide_them_in_location_fields() -> None:
    for formatter in (JsonLines(), TextLines()):
        out = io.StringIO()
        handler = logging.StreamHandler(out)
        handler.setFormatter(formatter)
        logger = logging.getLogger(f"test.no_secret.{type(formatter).__name__}")
        logger.addHandler(handler)
        logger.propagate = False
        logger.warning("capture of %s failed", DSN, extra=where(capture_source=DSN, client_code="100"))
        line = out.getvalue()
        assert not [s for s in SECRETS if s in line], line
        if isinstance(formatter, JsonLines):
            assert orjson.loads(line)["capture_source"].startswith("postgresql://app:***@db:5432/shop")


def test_metric_labels_hide_them() -> None:
    metrics = Metrics()
    metrics.changes_captured(spec().label, 3)
    exposition = generate_latest(metrics.registry).decode()
    assert "webhook_manager_captured_changes_total" in exposition
    assert not [s for s in SECRETS if s in exposition]


def test_the_status_report_hides_them() -> None:
    shown = without_credentials(DSN)
    assert not [s for s in SECRETS if s in shown], shown
