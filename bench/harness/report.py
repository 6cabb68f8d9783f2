"""What a bench prints: progress on standard error, figures on standard output, verdicts, tables, the JSON line.

Standard output carries the figures only, one per line, ending with one JSON line (read by tools: keep its keys).
Progress, warnings and the reasons for a failure go to standard error, each line prefixed with the seconds since
the bench started.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import orjson

STARTED = time.monotonic()


def log(message: str) -> None:
    """Progress, on standard error, with the seconds since the bench started."""
    print(f"# [{time.monotonic() - STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def out(message: str) -> None:
    """A figure, on standard output."""
    print(message, flush=True)


def json_line(document: dict[str, Any]) -> None:
    """The bench's last line on standard output: everything measured, as one JSON object."""
    out(orjson.dumps(document).decode())


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def fmt(value: float | None, spec: str = ",.0f") -> str:
    """A figure, or ``-`` when it was not measured."""
    return "-" if value is None else format(value, spec)


def table(rows: list[tuple[str, ...]]) -> None:
    """Rows as a table: the first is the header (followed by a rule), the first column left-aligned, the others
    right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        cells = zip(row, widths, strict=True)
        out(" | ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(cells)))
        if n == 0:
            out("-|-".join("-" * w for w in widths))
