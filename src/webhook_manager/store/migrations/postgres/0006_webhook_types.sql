-- The webhook-type catalogue (GET /v1/webhook-type, docs/api.md). capture_tables: the tables each capture
-- source watches, written by the process that captures it when it starts (replacing the source's rows) and
-- dropped by its --teardown; row_id is true when events carry a row-id column's value, enriched when they
-- carry the row (data = "row"). event_names: the (table, action) names a client has sent to POST /v1/event.
CREATE TABLE capture_tables (
    source       text NOT NULL,
    table_name   text NOT NULL,
    client_code  text NOT NULL,
    row_id       boolean NOT NULL,
    enriched     boolean NOT NULL,
    updated_at   bigint NOT NULL,
    PRIMARY KEY (source, table_name)
);
CREATE INDEX capture_tables_by_client ON capture_tables (client_code);

CREATE TABLE event_names (
    client_code  text NOT NULL,
    table_name   text NOT NULL,
    action       text NOT NULL,
    noted_at     bigint NOT NULL,
    PRIMARY KEY (client_code, table_name, action)
);
