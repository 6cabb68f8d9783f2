-- Idempotency keys of POST /v1/event (docs/api.md, "Idempotency-Key"): per client, the key a call sent, the
-- SHA-256 of its body's bytes and its answer (received, recorded), written in the transaction that records
-- its events, so that a repeat of the call answers the same and stores nothing (a call at the same time as
-- the first waits for its commit on the key's row). A key older than 24 h counts as unused and is purged, a
-- few hundred at a time, through the index on created_at.
CREATE TABLE idempotency_keys (
    client_code  text NOT NULL,
    key          text NOT NULL,
    body_hash    bytea NOT NULL,
    received     integer NOT NULL,
    recorded     integer NOT NULL,
    created_at   bigint NOT NULL,
    PRIMARY KEY (client_code, key)
);
CREATE INDEX idempotency_keys_by_time ON idempotency_keys (created_at);
