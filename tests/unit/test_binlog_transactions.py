"""MySQL/MariaDB binlog events → whole transactions of changes, replayed from events recorded on a real
MariaDB (tests/unit/recordings/, made by record_binlog.py there)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from webhook_manager.capture.binlog_transactions import (
    ColumnsUnknown,
    Commit,
    Gtid,
    Query,
    Record,
    Rotate,
    Rows,
    TransactionAssembler,
)
from webhook_manager.capture.changes import Change, Changes
from webhook_manager.capture.position import TransactionPosition

RECORDINGS: dict[str, list[dict[str, Any]]] = orjson.loads(
    (Path(__file__).parent / "recordings" / "mariadb_binlog.json").read_bytes()
)
KINDS: dict[str, type[Record]] = {"Rotate": Rotate, "Gtid": Gtid, "Commit": Commit, "Query": Query, "Rows": Rows}
START = TransactionPosition("mysql-bin.000001:4")
TABLES = {("app", "product"): ("product", "id")}


def records(scenario: str) -> list[Record]:
    return [KINDS[r["kind"]](**{k: v for k, v in r.items() if k != "kind"}) for r in RECORDINGS[scenario]]


def assembler(*, with_data: bool = False, resume: TransactionPosition = START) -> TransactionAssembler:
    return TransactionAssembler(TABLES, "app", with_data=with_data, resume=resume)


def replay(scenario: str, transactions: TransactionAssembler) -> tuple[list[Change], list[str]]:
    changes = Changes()
    positions = [p for r in records(scenario) if (p := transactions.take(r, changes)) is not None]
    return list(changes), positions


def commits(scenario: str) -> list[Commit]:
    return [r for r in records(scenario) if isinstance(r, Commit)]


def test_a_transaction_hands_over_its_rows_of_captured_tables_stamped_with_the_commit() -> None:
    changes, positions = replay("one transaction of inserts, an update and a delete", assembler())
    [commit] = commits("one transaction of inserts, an update and a delete")
    assert [(c.table, c.action, c.row_id) for c in changes] == [
        ("product", "insert", 1),
        ("product", "insert", 2),
        ("product", "update", 1),
        ("product", "delete", 2),
    ]  # the table `other` is not captured
    assert {c.committed_ms for c in changes} == {commit.timestamp * 1000}
    assert {c.data for c in changes} == {None}
    assert positions == [f"mysql-bin.000001:{commit.end}:-1"]


def test_with_data_an_insert_and_an_update_carry_the_new_row_and_a_delete_none() -> None:
    changes, _ = replay("one transaction of inserts, an update and a delete", assembler(with_data=True))
    assert [c.data for c in changes] == [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 1, "name": "c"}, None]


def test_truncate_is_one_delete_with_row_id_0_and_other_statements_are_not_ours() -> None:
    changes, positions = replay("statements on their own", assembler())
    assert [(c.table, c.action, c.row_id) for c in changes] == [("product", "insert", 3), ("product", "delete", 0)]
    truncate = next(r for r in records("statements on their own") if isinstance(r, Query) and "TRUNCATE" in r.query)
    # the ALTER of another table moves no position by itself: only an idle source moves it
    assert positions[-1] == f"mysql-bin.000001:{truncate.end}:-1"
    assert len(positions) == 2


def test_savepoints_keep_a_mariadb_group_one_transaction() -> None:
    changes, positions = replay("savepoints inside a transaction", assembler())
    assert [c.row_id for c in changes] == [10, 12]  # 11 was rolled back to the savepoint: not in the binlog
    assert len(positions) == 1


def test_a_two_phase_transaction_is_taken_when_prepared() -> None:
    transactions = assembler()
    changes, positions = replay("a two-phase transaction", transactions)
    [prepare] = commits("a two-phase transaction")
    assert [(c.action, c.row_id) for c in changes] == [("insert", 20)]
    assert positions == [f"mysql-bin.000001:{prepare.end}:-1"]  # XA COMMIT later changes nothing of ours
    assert not transactions.in_transaction


@pytest.mark.parametrize("scenario", ["a change logged as a statement", "a multi-table delete"])
def test_a_change_logged_as_a_statement_is_one_delete_with_row_id_0(scenario: str) -> None:
    changes, _ = replay(scenario, assembler())
    assert [(c.table, c.action, c.row_id) for c in changes][-1] == ("product", "delete", 0)
    assert all(c.table == "product" for c in changes)  # changes of other databases' tables are not ours


def test_a_transaction_cut_into_batches_resumes_after_what_was_taken() -> None:
    scenario = "one transaction of inserts, an update and a delete"
    first = assembler()
    taken = Changes()
    for record in records(scenario):
        first.take(record, taken)
        if first.held == 2:  # the batch is full: hand over what there is
            position = first.cut(taken)
            break
    assert position == "mysql-bin.000001:4:2"
    assert [c.row_id for c in taken] == [1, 2]
    rest, positions = replay(scenario, assembler(resume=TransactionPosition.parse(position)))
    assert [(c.action, c.row_id) for c in rest] == [("update", 1), ("delete", 2)]
    assert positions[0].endswith(":-1")


def test_a_rotation_moves_the_boundary_only_between_transactions() -> None:
    transactions = assembler()
    transactions.take(Rotate("mysql-bin.000002", 4), Changes())
    assert transactions.here() == "mysql-bin.000002:4:-1"
    transactions.take(Gtid(group=True), Changes())
    transactions.take(Rotate("mysql-bin.000002", 900), Changes())  # the library reconnecting mid-transaction
    assert transactions.here() == "mysql-bin.000002:4:-1"


def test_rows_without_column_names_are_refused_rather_than_guessed() -> None:
    transactions = assembler()
    transactions.take(Gtid(group=True), Changes())
    with pytest.raises(ColumnsUnknown):
        transactions.take(Rows("insert", "app", "product", 99, 1, [{"values": {"UNKNOWN_COL0": 5}}]), Changes())
