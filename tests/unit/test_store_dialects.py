"""The store's two dialects name the same queries, and the one logic calls only those."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from webhook_manager.store import reports, sql_store
from webhook_manager.store.dialect import load_queries, read_queries
from webhook_manager.store.sqlite import Query

DIALECTS = ("sqlite", "postgres")


def test_each_dialect_has_every_query_once_and_in_the_same_order() -> None:
    sqlite, postgres = read_queries("sqlite"), read_queries("postgres")
    assert list(sqlite) == list(postgres)  # the same names, laid out in the same order
    assert not sqlite.keys() & read_queries("shared").keys()
    assert load_queries("sqlite").keys() == load_queries("postgres").keys()


def test_the_logic_calls_only_queries_both_dialects_have() -> None:
    trees = [ast.parse(Path(str(module.__file__)).read_text(encoding="utf-8")) for module in (sql_store, reports)]
    called = {
        node.args[0].value
        for tree in trees
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("fetch", "fetch_one", "fetch_value", "execute", "execute_rows")
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    for dialect in DIALECTS:
        assert called == set(load_queries(dialect)), dialect  # none missing, none left unused


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_query_takes_the_same_arguments_on_both_dialects(dialect: str) -> None:
    queries = load_queries(dialect)
    other = load_queries("postgres" if dialect == "sqlite" else "sqlite")
    for name, sql in queries.items():
        # a dialect may leave an argument unused (a row's column it does not need), never take one more
        assert _arguments(sql) == _arguments(other[name]), name


def _arguments(sql: str) -> int:
    return max((int(n) for n in re.findall(r"\$(\d+)", sql)), default=0)


def test_sqlite_binds_numbered_arguments_in_the_order_they_appear() -> None:
    query = Query("UPDATE t SET a = $2, b = $1 WHERE c = $2 AND d IN (SELECT value FROM json_each($3))")
    assert query.sql == "UPDATE t SET a = ?, b = ? WHERE c = ? AND d IN (SELECT value FROM json_each(?))"
    assert query.bind(("one", "two", ["x", "y"])) == ["two", "one", "two", '["x","y"]']
