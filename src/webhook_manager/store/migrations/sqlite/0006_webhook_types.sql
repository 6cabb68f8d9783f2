-- The webhook-type catalogue (GET /v1/webhook-type, docs/api.md). capture_tables: the tables each capture
-- source watches, written by the process that captures it when it starts (replacing the source's rows) and
-- dropped by its --teardown; row_id is 1 when events carry a row-id column's value, enriched when they
-- carry the row (data = "row"). event_names: the (table, action) names a client has sent to POST /v1/event.
CREATE TABLE capture_tables (
    source       TEXT NOT NULL,
    table_name   TEXT NOT NULL,
    client_code  TEXT NOT NULL,
    row_id       INTEGER NOT NULL,
    enriched     INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (source, table_name)
) WITHOUT ROWID;
CREATE INDEX capture_tables_by_client ON capture_tables (client_code);

CREATE TABLE event_names (
    client_code  TEXT NOT NULL,
    table_name   TEXT NOT NULL,
    action       TEXT NOT NULL,
    noted_at     INTEGER NOT NULL,
    PRIMARY KEY (client_code, table_name, action)
) WITHOUT ROWID;
