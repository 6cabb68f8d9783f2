"""Every target the benchmarks hold their figures to, in one place (the issues' targets).

The figures are compared with these values only here and in the verdicts the benches print (``PASS`` / ``MISS``,
``n/a`` when a figure was not measured); both benches also print them in their header and in their JSON line
(``targets``), so keep the keys and the values' types (ints print as ``100000``, floats as ``50000.0``).
"""

from __future__ import annotations

# ----------------------------------------------------------------------------- bench/pipeline.py, by part

# One `webhook-manager serve` on SQLite: (a) end-to-end events/s in full batches, (b) one-event webhooks/s,
# (c) record → receipt latency at 1 000 events/s, (d) peak RSS draining the backlog.
PIPELINE_SQLITE: dict[str, float] = {
    "a_events_per_s": 100_000,
    "b_webhooks_per_s": 5_000,
    "c_p50_ms": 40,
    "c_p99_ms": 150,
    "d_peak_rss_mb": 300,
}
# On PostgreSQL, with 1 api + 3 workers on a 2-core machine; (c) and (d) are SQLite's.
PIPELINE_POSTGRES: dict[str, float] = {**PIPELINE_SQLITE, "a_events_per_s": 60_000, "b_webhooks_per_s": 3_000}
PIPELINE_POSTGRES_WORKERS = 3  # the worker count the PostgreSQL targets are stated for


def pipeline_targets(postgres: bool) -> dict[str, float]:
    return PIPELINE_POSTGRES if postgres else PIPELINE_SQLITE


# ------------------------------------------------------------------------------ bench/capture.py, by source

CAPTURE_CHANGES_PER_S = 50_000.0  # (a) changes/s captured from one big UPDATE
CAPTURE_CHANGES_PER_S_OF = {"mysql": 30_000.0}  # where a source's target differs from CAPTURE_CHANGES_PER_S
CAPTURE_P99_MS = 100.0  # (c) commit → webhook p99 at 1 000 changes/s, every source


def capture_changes_per_s(source: str) -> float:
    return CAPTURE_CHANGES_PER_S_OF.get(source, CAPTURE_CHANGES_PER_S)
