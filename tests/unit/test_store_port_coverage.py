"""The store contract suite exercises every verb of the port, so a verb added to one adapter is tested on all."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from webhook_manager.store.port import Store

CONTRACT_SUITE = Path(__file__).parents[1] / "integration" / "test_store_contract.py"


def test_the_contract_suite_calls_every_verb_of_the_port() -> None:
    verbs = {name for name, _ in inspect.getmembers(Store) if not name.startswith("_")}
    tree = ast.parse(CONTRACT_SUITE.read_text(encoding="utf-8"))
    used = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert verbs, "the port has verbs"
    assert sorted(verbs - used) == []
