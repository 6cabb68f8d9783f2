"""The acceptance tests' working folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder as the current directory, with no WEBHOOK_MANAGER_* settings inherited."""
    for name in list(os.environ):
        if name.startswith("WEBHOOK_MANAGER_"):
            monkeypatch.delenv(name)
    return tmp_path
