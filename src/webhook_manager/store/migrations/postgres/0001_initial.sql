-- The whole store on PostgreSQL; the same tables as on SQLite (see ../sqlite/0001_initial.sql for why each
-- is shaped as it is). Times are bigint milliseconds since the Unix epoch, UTC.

CREATE TABLE clients (
    code        text PRIMARY KEY,
    created_at  bigint NOT NULL
);

CREATE TABLE users (
    id             bigserial PRIMARY KEY,
    client_code    text NOT NULL REFERENCES clients (code),
    username       text NOT NULL,
    password_hash  text NOT NULL,
    created_at     bigint NOT NULL,
    UNIQUE (client_code, username)
);

CREATE TABLE login_failures (
    client_code      text NOT NULL,
    username         text NOT NULL,
    count            integer NOT NULL,
    last_failure_at  bigint NOT NULL,
    PRIMARY KEY (client_code, username)
);
CREATE INDEX login_failures_by_time ON login_failures (last_failure_at);

CREATE TABLE sessions (
    key_hash     bytea PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_code  text NOT NULL,
    created_at   bigint NOT NULL,
    expires_at   bigint NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE configurations (
    seq          bigserial PRIMARY KEY,
    id           text NOT NULL UNIQUE,
    client_code  text NOT NULL REFERENCES clients (code),
    table_name   text NOT NULL,
    action       text NOT NULL,
    endpoint     text NOT NULL,
    secret       text NOT NULL,
    disabled     boolean NOT NULL DEFAULT false,
    created_at   bigint NOT NULL,
    updated_at   bigint NOT NULL
);
CREATE INDEX configurations_by_client ON configurations (client_code, seq);
CREATE INDEX configurations_enabled ON configurations (client_code, table_name, action) WHERE NOT disabled;

CREATE TABLE event_bundles (
    seq              bigserial PRIMARY KEY,
    client_code      text NOT NULL,
    table_name       text NOT NULL,
    action           text NOT NULL,
    event_count      integer NOT NULL,
    items            bytea NOT NULL,
    created_at       bigint NOT NULL,
    processed_count  integer NOT NULL DEFAULT 0,
    processed_at     bigint
);
CREATE INDEX event_bundles_pending ON event_bundles (client_code, table_name, action, seq)
    WHERE processed_count < event_count;
CREATE INDEX event_bundles_by_subject ON event_bundles (client_code, table_name, action, seq);

CREATE TABLE webhooks (
    seq               bigserial PRIMARY KEY,
    id                text NOT NULL UNIQUE,
    client_code       text NOT NULL,
    configuration_id  text NOT NULL,
    table_name        text NOT NULL,
    action            text NOT NULL,
    endpoint          text NOT NULL,
    secret            text NOT NULL,
    event_count       integer NOT NULL,
    payload           bytea NOT NULL,
    status            text NOT NULL,
    tries             integer NOT NULL DEFAULT 0,
    round_tries       integer NOT NULL DEFAULT 0,
    last_failure      text NOT NULL DEFAULT '',
    created_at        bigint NOT NULL,
    processed_at      bigint,
    due_at            bigint,
    lease_until       bigint
);
CREATE INDEX webhooks_due ON webhooks (endpoint, due_at) WHERE due_at IS NOT NULL;
CREATE INDEX webhooks_by_client ON webhooks (client_code, seq);
CREATE INDEX webhooks_unsent ON webhooks (configuration_id) WHERE due_at IS NOT NULL;
CREATE INDEX webhooks_finished ON webhooks (processed_at) WHERE due_at IS NULL;

CREATE TABLE attempts (
    webhook_seq  bigint NOT NULL REFERENCES webhooks (seq) ON DELETE CASCADE,
    try          integer NOT NULL,
    at           bigint NOT NULL,
    duration_ms  integer NOT NULL,
    http_status  integer,
    error        text NOT NULL DEFAULT '',
    PRIMARY KEY (webhook_seq, try)
);
