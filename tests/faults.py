"""Fault-test fixtures: a small disk of its own (a tmpfs mount), so a test can fill it and free it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import IN_CI


@contextmanager
def small_disk(where: Path, mib: int) -> Iterator[Path]:
    """A tmpfs of ``mib`` MiB mounted at ``where`` for the block (root only: skipped elsewhere, failed in CI)."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={mib}m", "tmpfs", str(where)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        message = f"cannot mount a tmpfs for the full-disk test: {mounted.stderr.strip()}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def filler(path: Path, mib: int) -> Path:
    """A file of ``mib`` MiB that holds that much of its disk until it is deleted."""
    with path.open("wb") as f:
        for _ in range(mib):
            f.write(b"\xff" * (1 << 20))
    return path
