-- Idempotency keys of POST /v1/event (docs/api.md, "Idempotency-Key"): per client, the key a call sent, the
-- SHA-256 of its body's bytes and its answer (received, recorded), written in the transaction that records
-- its events, so that a repeat of the call answers the same and stores nothing. A key older than 24 h counts
-- as unused and is purged, a few hundred at a time, through the index on created_at.
CREATE TABLE idempotency_keys (
    client_code  TEXT NOT NULL,
    key          TEXT NOT NULL,              -- 1 to 255 printable ASCII characters, as sent
    body_hash    BLOB NOT NULL,              -- SHA-256 of the request body's bytes
    received     INTEGER NOT NULL,
    recorded     INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (client_code, key)
);
CREATE INDEX idempotency_keys_by_time ON idempotency_keys (created_at);
