-- Database change capture (docs/capture.md): how far each source has been recorded. A source's position
-- (outbox batch, replication LSN, binlog position; opaque here) is written in the transaction that stores the
-- events it produced, so a capture killed at any moment and started again loses and doubles nothing.
CREATE TABLE capture_positions (
    source       TEXT PRIMARY KEY,
    client_code  TEXT NOT NULL,
    position     TEXT NOT NULL,
    updated_at   INTEGER NOT NULL
) WITHOUT ROWID;
