-- The whole store: accounts and sessions, configurations, and the pipeline's events, webhooks and attempts.
-- Times are integer milliseconds since the Unix epoch, UTC.

CREATE TABLE clients (
    code        TEXT PRIMARY KEY,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    client_code    TEXT NOT NULL REFERENCES clients (code),
    username       TEXT NOT NULL,
    password_hash  TEXT NOT NULL,            -- argon2id, salted
    created_at     INTEGER NOT NULL,
    UNIQUE (client_code, username)
);

-- Consecutive failed logins per (client, username), known or not, so a block says nothing about who exists.
CREATE TABLE login_failures (
    client_code      TEXT NOT NULL,
    username         TEXT NOT NULL,
    count            INTEGER NOT NULL,
    last_failure_at  INTEGER NOT NULL,
    PRIMARY KEY (client_code, username)
);
CREATE INDEX login_failures_by_time ON login_failures (last_failure_at);

-- Only the SHA-256 of a session key is kept.
CREATE TABLE sessions (
    key_hash     BLOB PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_code  TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE configurations (
    seq          INTEGER PRIMARY KEY,        -- creation order: lists are oldest first
    id           TEXT NOT NULL UNIQUE,       -- 24 lowercase hex
    client_code  TEXT NOT NULL REFERENCES clients (code),
    table_name   TEXT NOT NULL,
    action       TEXT NOT NULL,
    endpoint     TEXT NOT NULL,
    secret       TEXT NOT NULL,              -- kept as given: it keys the HMAC of every webhook
    disabled     INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX configurations_by_client ON configurations (client_code, seq);
CREATE INDEX configurations_enabled ON configurations (client_code, table_name, action) WHERE disabled = 0;

-- Accepted events, kept as bundles: one row per recording call and subject (client, table, action), its
-- items already in the webhook's wire form. A bundle of 10 000 events is one row, so recording and batching
-- cost one write per call, not per event. Events [0, processed_count) of a bundle are in webhooks; the
-- batcher advances processed_count in the transaction that creates those webhooks.
CREATE TABLE event_bundles (
    seq              INTEGER PRIMARY KEY,
    client_code      TEXT NOT NULL,
    table_name       TEXT NOT NULL,
    action           TEXT NOT NULL,
    event_count      INTEGER NOT NULL,
    items            BLOB NOT NULL,          -- JSON array of {"rowId", "timestamp", "data"}
    created_at       INTEGER NOT NULL,       -- when it was recorded
    processed_count  INTEGER NOT NULL DEFAULT 0,
    processed_at     INTEGER                 -- when events of it were last put into webhooks
);
CREATE INDEX event_bundles_pending ON event_bundles (client_code, table_name, action, seq)
    WHERE processed_count < event_count;
CREATE INDEX event_bundles_by_subject ON event_bundles (client_code, table_name, action, seq);

-- One webhook per batch per configuration. The body is fixed at creation (id, hmac, items), so every
-- try sends the same bytes; endpoint and the configuration's id are kept for the log and for dispatch.
CREATE TABLE webhooks (
    seq               INTEGER PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    client_code       TEXT NOT NULL,
    configuration_id  TEXT NOT NULL,         -- no foreign key: a removed configuration fails its webhooks
    table_name        TEXT NOT NULL,
    action            TEXT NOT NULL,
    endpoint          TEXT NOT NULL,
    secret            TEXT NOT NULL,         -- the one its hmac was made with; signs every try too
    event_count       INTEGER NOT NULL,
    payload           BLOB NOT NULL,
    status            TEXT NOT NULL,         -- pending | retrying | sent | failed
    tries             INTEGER NOT NULL DEFAULT 0,
    round_tries       INTEGER NOT NULL DEFAULT 0,  -- tries since creation or the last resend
    last_failure      TEXT NOT NULL DEFAULT '',
    created_at        INTEGER NOT NULL,
    processed_at      INTEGER,               -- when the last try ended
    due_at            INTEGER,               -- next try (or a lease's end); NULL once sent or failed
    lease_until       INTEGER                -- a claimed try is in flight until then, NULL otherwise
);
CREATE INDEX webhooks_due ON webhooks (endpoint, due_at) WHERE due_at IS NOT NULL;
CREATE INDEX webhooks_by_client ON webhooks (client_code, seq);
CREATE INDEX webhooks_unsent ON webhooks (configuration_id) WHERE due_at IS NOT NULL;
CREATE INDEX webhooks_finished ON webhooks (processed_at) WHERE due_at IS NULL;

CREATE TABLE attempts (
    webhook_seq  INTEGER NOT NULL REFERENCES webhooks (seq) ON DELETE CASCADE,
    try          INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    duration_ms  INTEGER NOT NULL,
    http_status  INTEGER,
    error        TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (webhook_seq, try)
) WITHOUT ROWID;
