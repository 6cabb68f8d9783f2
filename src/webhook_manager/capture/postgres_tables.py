"""What both PostgreSQL capture modes need from the application's catalog: connecting, finding the tables,
their row-id columns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg2
import psycopg2.extensions

from webhook_manager.capture.pgoutput import INT_TYPES
from webhook_manager.capture.spec import CaptureSpec
from webhook_manager.domain.errors import CaptureError, first_line


@dataclass(frozen=True, slots=True)
class Table:
    """A captured table: its name in events, where it is, and the column giving ``rowId`` (None: 0)."""

    name: str
    oid: int
    qualified: str  # "schema"."table", quoted
    row_id_column: str | None
    replica_identity: str  # d (default: primary key), f (full), i (index), n (nothing)
    has_primary_key: bool
    row_id_in_key: bool  # the row-id column is one of the primary key's

    @property
    def row_id_in_old_row(self) -> bool:
        """Whether logical replication sends the row-id column with a delete (it sends the replica identity)."""
        return self.row_id_column is not None and (
            self.replica_identity == "f" or (self.replica_identity == "d" and self.row_id_in_key)
        )


def connect(spec: CaptureSpec, **kwargs: Any) -> Any:
    """A psycopg2 connection to the application's database; CaptureError when it cannot be made."""
    try:
        conn = psycopg2.connect(spec.dsn, application_name="webhook-manager capture", **kwargs)
    except psycopg2.OperationalError as exc:
        raise ConnectionError(f"cannot connect to {spec.describe()}: {first_line(exc)}") from exc
    return conn


def database_name(conn: Any) -> str:
    with conn.cursor() as cur:
        cur.execute("SELECT current_database()")
        return str(cur.fetchone()[0])


def find_tables(conn: Any, spec: CaptureSpec) -> list[Table]:
    """Each configured table, checked: CaptureError when one does not exist or names an unknown column."""
    tables: list[Table] = []
    with conn.cursor() as cur:
        for name in spec.tables:
            cur.execute(
                "SELECT c.oid, format('%%I.%%I', n.nspname, c.relname), c.relreplident, c.relkind"
                " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)",
                (name,),
            )
            found = cur.fetchone()
            if found is None or found[3] not in ("r", "p"):
                raise CaptureError(f"no table {name!r} in database {database_name(conn)!r}")
            oid, qualified, identity, _ = found
            cur.execute(
                "SELECT a.attname, a.atttypid FROM pg_index i"
                " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)"
                " WHERE i.indrelid = %s AND i.indisprimary",
                (oid,),
            )
            keys = cur.fetchall()
            column = spec.row_id_columns.get(name)
            if column is not None:
                cur.execute(
                    "SELECT 1 FROM pg_attribute WHERE attrelid = %s AND attname = %s"
                    " AND attnum > 0 AND NOT attisdropped",
                    (oid, column),
                )
                if cur.fetchone() is None:
                    raise CaptureError(f"row_id_columns: table {name!r} has no column {column!r}")
            elif len(keys) == 1 and keys[0][1] in INT_TYPES:
                column = keys[0][0]
            in_key = column is not None and column in {key for key, _ in keys}
            tables.append(Table(name, oid, qualified, column, identity, bool(keys), in_key))
    return tables


def quote_ident(conn: Any, name: str) -> str:
    return str(psycopg2.extensions.quote_ident(name, conn))
