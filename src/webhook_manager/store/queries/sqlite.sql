-- The SQLite dialect: the store logic's (store/sql_store.py) queries whose text differs from PostgreSQL's, by
-- name (the rest, the same on both, are in shared.sql). postgres.sql holds the same names in the same order,
-- with the same arguments ($1 … $n). A list argument arrives as a JSON array (read it with json_each); a
-- query run by execute_rows runs once per row (executemany).

-- schema

-- name: ping
SELECT 1

-- name: lock_migrations
-- one writer at a time: nothing to lock
SELECT 1

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS schema_migrations
    (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT (datetime('now')))

-- accounts

-- name: lock_first_user
-- one writer at a time: nothing to lock
SELECT 1

-- name: forget_old_login_failures
-- a few at a time, so guessing names cannot fill the disk
DELETE FROM login_failures WHERE rowid IN
    (SELECT rowid FROM login_failures WHERE failed_at < $1 LIMIT 100)

-- configurations

-- name: lock_client
-- one writer at a time: nothing to lock
SELECT $1 IS NOT NULL

-- events

-- name: record_bundle
-- kept only when an enabled configuration matches: its seq, or no row
INSERT INTO event_bundles (client_code, table_name, action, event_count, items, created_at)
SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM configurations
    WHERE client_code = $1 AND table_name = $2 AND action = $3 AND disabled = 0)
RETURNING seq

-- name: captured_tables
-- a table watched by several sources promises what all of them do
SELECT table_name, min(row_id), min(enriched) FROM capture_tables WHERE client_code = $1 GROUP BY table_name

-- webhooks

-- name: lock_subject
-- one writer at a time: the subject is this round's
SELECT $1 IS NOT NULL

-- name: enabled_configurations
SELECT id, client_code, table_name, action, endpoint, secret, disabled, created_at, updated_at
FROM configurations WHERE client_code = $1 AND table_name = $2 AND action = $3 AND disabled = 0 ORDER BY seq

-- name: add_webhooks
INSERT INTO webhooks (id, client_code, configuration_id, table_name, action, endpoint, secret, event_count, payload,
    status, created_at, due_at, recorded_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $10, $11)

-- name: advance_bundles
UPDATE event_bundles SET processed_count = $2, processed_at = $3 WHERE seq = $1

-- name: lease_due_webhooks
-- a lease moves due_at to its end, so a leased webhook is due again only if its try is not logged in time;
-- one whose lease ran out is taken over only when $5 says so
UPDATE webhooks SET due_at = $4, lease_until = $4 WHERE seq IN (SELECT seq FROM webhooks
    WHERE endpoint = $1 AND due_at IS NOT NULL AND due_at <= $2 AND (lease_until IS NULL OR $5)
    ORDER BY due_at LIMIT $3)
RETURNING seq, id, endpoint, payload, round_tries, configuration_id, secret, client_code, tries, recorded_at

-- name: configuration_states
-- what a try takes from its configuration: whether it still sends, its secrets and its custom headers
SELECT id, disabled, secret, previous_secret, previous_secret_until, headers FROM configurations
WHERE id IN (SELECT value FROM json_each($1))

-- name: end_webhooks
UPDATE webhooks SET status = 'failed', due_at = NULL, lease_until = NULL, processed_at = $2, last_failure = $3
WHERE seq = $1

-- name: log_attempts
-- run after end_tries (which counted the try); a try already logged (an earlier write of it committed, and its
-- answer was lost with the connection) is not logged again
INSERT INTO attempts (webhook_seq, try, at, duration_ms, http_status, error)
SELECT seq, tries, $2, $3, $4, $5 FROM webhooks
WHERE seq = $1 AND NOT EXISTS (SELECT 1 FROM attempts WHERE webhook_seq = $1 AND at = $2 AND duration_ms = $3)

-- name: end_tries
UPDATE webhooks SET tries = tries + 1, round_tries = round_tries + 1, status = $6,
    last_failure = CASE WHEN $5 = '' THEN last_failure ELSE $5 END, processed_at = $2 + $3, due_at = $7,
    lease_until = NULL
WHERE seq = $1 AND NOT EXISTS (SELECT 1 FROM attempts WHERE webhook_seq = $1 AND at = $2 AND duration_ms = $3)

-- name: list_webhooks
-- newest first through webhooks_by_client from below seq $6 (the page after a webhook; the largest seq for none)
SELECT id, table_name, action, endpoint, event_count, status, tries, last_failure, created_at, processed_at
FROM webhooks WHERE client_code = $1 AND seq < $6 AND ($2 IS NULL OR table_name = $2)
    AND ($3 IS NULL OR action = $3) AND ($5 IS NULL OR status = $5)
ORDER BY seq DESC LIMIT $4

-- name: webhook_status
SELECT status FROM webhooks WHERE id = $1 AND client_code = $2

-- name: resend_webhook
UPDATE webhooks SET status = 'pending', round_tries = 0, due_at = $2, lease_until = NULL WHERE id = $1

-- name: purge_finished_webhooks
-- their tries go with them (ON DELETE CASCADE)
DELETE FROM webhooks WHERE seq IN
    (SELECT seq FROM webhooks WHERE due_at IS NULL AND processed_at < $1 LIMIT $2)

-- name: purge_processed_bundles
DELETE FROM event_bundles WHERE seq IN (SELECT seq FROM event_bundles
    WHERE processed_count >= event_count AND processed_at < $1 ORDER BY seq LIMIT $2)

-- name: purge_idempotency_keys
DELETE FROM idempotency_keys WHERE rowid IN
    (SELECT rowid FROM idempotency_keys WHERE created_at < $1 LIMIT $2)

-- reports (metrics, the status command, the API's delivery reports)

-- name: has_migrations_table
SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'

-- name: webhooks_per_minute
-- client $1's webhooks that ended sent or failed (due_at is null) from $2 to before $3, by the minute they
-- ended (integer division), through the index of finished webhooks: SQLite keeps no statistics, and would
-- walk every webhook the client has through webhooks_by_client instead
SELECT processed_at / 60000, sum(CASE WHEN status = 'sent' THEN 1 ELSE 0 END),
    sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END)
FROM webhooks INDEXED BY webhooks_finished
WHERE due_at IS NULL AND processed_at >= $2 AND processed_at < $3 AND client_code = $1
GROUP BY processed_at / 60000
