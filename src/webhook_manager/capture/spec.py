"""What one capture source is (docs/capture.md): a ``[[capture]]`` section of the settings, or the flags of
``webhook-manager capture …``. Pure."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from webhook_manager.ingest.fields import TABLE_PATTERN
from webhook_manager.observability.redaction import redacted

_SLOT_NAME = re.compile(r"[a-z0-9_]{1,63}")

Kind = Literal["sqlite", "postgres", "mysql"]
DataMode = Literal["none", "row"]
PostgresMode = Literal["logical", "trigger"]


class CaptureSpec(BaseModel):
    """One source: a database, the tables watched there, and the client whose events they become."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # sqlite | postgres | mysql
    kind: Kind
    # sqlite: the application's database file.
    database: str | None = None
    # postgres and mysql: the application's database, postgresql://user@host/db or mysql://user:pw@host/db.
    dsn: str | None = None
    # The client (account) whose events the changes become.
    client_code: str = Field(min_length=1, max_length=64)
    # Tables watched; each name is also the events' `table` (PostgreSQL: `schema.table` or a name on the
    # search path).
    tables: tuple[str, ...] = Field(min_length=1)
    # none: `data` is null (Erply's generic events); row: the new row as a JSON object (null for delete).
    data: DataMode = "none"
    # The column giving `rowId`, per table; default: the table's single integer primary key, else 0.
    row_id_columns: dict[str, str] = Field(default_factory=dict)
    # postgres: logical (replication slot, pgoutput) or trigger (triggers and an outbox table).
    mode: PostgresMode = "logical"
    # postgres: the name of the replication slot and publication (logical), or of the capture's schema (trigger).
    slot: str | None = None

    @field_validator("tables")
    @classmethod
    def _table_names(cls, tables: tuple[str, ...]) -> tuple[str, ...]:
        for name in tables:
            if TABLE_PATTERN.fullmatch(name) is None:
                raise ValueError(f"table {name!r} is not 1 to 64 characters of A-Z a-z 0-9 _ . -")
        if len(set(tables)) != len(tables):
            raise ValueError("names a table twice")
        return tables

    @field_validator("slot")
    @classmethod
    def _slot_name(cls, slot: str | None) -> str | None:
        if slot is not None and _SLOT_NAME.fullmatch(slot) is None:
            raise ValueError("must be 1 to 63 characters of a-z 0-9 _")
        return slot

    @model_validator(mode="after")
    def _complete(self) -> CaptureSpec:
        if self.kind == "sqlite":
            if not self.database:
                raise ValueError("a sqlite source needs database (the application's database file)")
        elif not self.dsn:
            raise ValueError(f"a {self.kind} source needs dsn (the application's database URL)")
        elif self.kind == "postgres" and not self.dsn.startswith(("postgresql://", "postgres://")):
            raise ValueError("dsn of a postgres source must start with postgresql://")
        elif self.kind == "mysql" and not self.dsn.startswith(("mysql://", "mariadb://")):
            raise ValueError("dsn of a mysql source must start with mysql://")
        unknown = sorted(set(self.row_id_columns) - set(self.tables))
        if unknown:
            raise ValueError(f"row_id_columns names {unknown[0]!r}, which is not in tables")
        return self

    @property
    def source(self) -> str:
        """Which source reads it: ``sqlite``, ``postgres-logical``, ``postgres-trigger`` or ``mysql``."""
        return f"postgres-{self.mode}" if self.kind == "postgres" else self.kind

    @property
    def slot_name(self) -> str:
        """The replication slot (and publication) of a postgres logical source."""
        if self.slot is not None:
            return self.slot
        return "webhook_manager_" + re.sub(r"[^a-z0-9_]", "_", self.client_code.lower())[:40]

    def set_up(self, where: object) -> str:
        """The start of a set-up's one line: what is captured, and where."""
        return f"set up capture of {', '.join(self.tables)} in {where}"

    def describe(self) -> str:
        """Where the source is, for messages: never with a password (in the user info or the query)."""
        return f"{self.kind} {redacted((self.database if self.kind == 'sqlite' else self.dsn) or '')}"

    @property
    def label(self) -> str:
        """The source's name in metrics: :meth:`describe`, and the slot (or the trigger mode's schema) of a
        postgres source, so no two ``[[capture]]`` sections share one (the settings refuse two alike)."""
        return self.describe() + (f" slot {self.slot_name}" if self.kind == "postgres" else "")
