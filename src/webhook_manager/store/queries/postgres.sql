-- The PostgreSQL dialect: the store logic's (store/sql_store.py) queries whose text differs from SQLite's, by
-- name (the rest, the same on both, are in shared.sql). sqlite.sql holds the same names in the same order,
-- with the same arguments ($1 … $n). A query run by execute_rows gets one array per column (unnest them); a
-- list argument is an array.

-- schema

-- name: ping
SELECT count(*) FROM schema_migrations

-- name: lock_migrations
-- processes that start at once migrate one after the other, waiting as long as that takes (no lock_timeout)
SELECT set_config('lock_timeout', '0', true), pg_advisory_xact_lock(hashtext('webhook_manager.migrate'))

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS schema_migrations
    (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())

-- accounts

-- name: lock_first_user
-- two processes starting on an empty store create one first user between them
SELECT pg_advisory_xact_lock(hashtext('webhook_manager.first_user'))

-- name: forget_old_login_failures
-- a few at a time, so guessing names cannot fill the disk
DELETE FROM login_failures WHERE ctid = ANY (ARRAY(SELECT ctid FROM login_failures
    WHERE failed_at < $1 LIMIT 100))

-- configurations

-- name: lock_client
-- a client's configurations are counted and changed one writer at a time, so caps hold under parallel calls
SELECT code FROM clients WHERE code = $1 FOR UPDATE

-- events

-- name: record_bundle
-- kept only when an enabled configuration matches: its seq, or no row; wakes the other processes' batchers
WITH kept AS (
    INSERT INTO event_bundles (client_code, table_name, action, event_count, items, created_at)
    SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM configurations
        WHERE client_code = $1 AND table_name = $2 AND action = $3 AND NOT disabled)
    RETURNING seq
) SELECT seq FROM kept, pg_notify('webhook_manager', 'events')

-- name: captured_tables
-- a table watched by several sources promises what all of them do
SELECT table_name, bool_and(row_id), bool_and(enriched) FROM capture_tables WHERE client_code = $1 GROUP BY table_name

-- webhooks

-- name: lock_subject
-- one process forms a subject at a time, so its batches stay whole and in order
SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))

-- name: enabled_configurations
SELECT id, client_code, table_name, action, endpoint, secret, disabled, created_at, updated_at
FROM configurations WHERE client_code = $1 AND table_name = $2 AND action = $3 AND NOT disabled ORDER BY seq

-- name: add_webhooks
-- no NOTIFY: the process that formed them sends them (the others poll), and each NOTIFY takes PostgreSQL's
-- global notify lock through its commit
INSERT INTO webhooks (id, client_code, configuration_id, table_name, action, endpoint, secret, event_count, payload,
    status, created_at, due_at, recorded_at)
SELECT t.id, t.client_code, t.cid, t.table_name, t.action, t.endpoint, t.secret, t.n, t.body, 'pending', t.at, t.at,
    t.recorded
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int[],
    $9::bytea[], $10::bigint[], $11::bigint[])
    AS t(id, client_code, cid, table_name, action, endpoint, secret, n, body, at, recorded)

-- name: advance_bundles
UPDATE event_bundles b SET processed_count = t.n, processed_at = t.at
FROM unnest($1::bigint[], $2::int[], $3::bigint[]) AS t(seq, n, at) WHERE b.seq = t.seq

-- name: lease_due_webhooks
-- a lease moves due_at to its end, so a leased webhook is due again only if its try is not logged in time;
-- one whose lease ran out is taken over only when $5 says so; rows another process is leasing now are skipped
WITH picked AS (SELECT seq FROM webhooks WHERE endpoint = $1 AND due_at IS NOT NULL AND due_at <= $2
    AND (lease_until IS NULL OR $5::boolean) ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED)
UPDATE webhooks w SET due_at = $4, lease_until = $4 FROM picked WHERE w.seq = picked.seq
RETURNING w.seq, w.id, w.endpoint, w.payload, w.round_tries, w.configuration_id, w.secret, w.client_code, w.tries,
    w.recorded_at

-- name: configuration_states
-- what a try takes from its configuration: whether it still sends, its secrets and its custom headers
SELECT id, disabled, secret, previous_secret, previous_secret_until, headers FROM configurations
WHERE id = ANY($1::text[])

-- name: end_webhooks
UPDATE webhooks w SET status = 'failed', due_at = NULL, lease_until = NULL, processed_at = t.at,
    last_failure = t.reason
FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS t(seq, at, reason) WHERE w.seq = t.seq

-- name: log_attempts
-- run after end_tries (which counted the try); a try already logged (an earlier write of it committed, and its
-- answer was lost with the connection) is not logged again
INSERT INTO attempts (webhook_seq, try, at, duration_ms, http_status, error)
SELECT w.seq, w.tries, t.at, t.duration, t.status, t.error
FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::int[], $5::text[]) AS t(seq, at, duration, status, error)
JOIN webhooks w ON w.seq = t.seq
WHERE NOT EXISTS (SELECT 1 FROM attempts a WHERE a.webhook_seq = t.seq AND a.at = t.at AND a.duration_ms = t.duration)

-- name: end_tries
UPDATE webhooks w SET tries = w.tries + 1, round_tries = w.round_tries + 1, status = t.state,
    last_failure = CASE WHEN t.error = '' THEN w.last_failure ELSE t.error END, processed_at = t.at + t.duration,
    due_at = t.due, lease_until = NULL
FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::int[], $5::text[], $6::text[], $7::bigint[])
    AS t(seq, at, duration, status, error, state, due)
WHERE w.seq = t.seq
    AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.webhook_seq = t.seq AND a.at = t.at AND a.duration_ms = t.duration)

-- name: list_webhooks
-- newest first through webhooks_by_client from below seq $6 (the page after a webhook; the largest seq for none)
SELECT id, table_name, action, endpoint, event_count, status, tries, last_failure, created_at, processed_at
FROM webhooks WHERE client_code = $1 AND seq < $6 AND ($2::text IS NULL OR table_name = $2)
    AND ($3::text IS NULL OR action = $3) AND ($5::text IS NULL OR status = $5)
ORDER BY seq DESC LIMIT $4

-- name: webhook_status
SELECT status FROM webhooks WHERE id = $1 AND client_code = $2 FOR UPDATE

-- name: resend_webhook
-- wakes the other processes' dispatchers
WITH resent AS (UPDATE webhooks SET status = 'pending', round_tries = 0, due_at = $2, lease_until = NULL
    WHERE id = $1 RETURNING seq)
SELECT pg_notify('webhook_manager', 'webhooks') FROM resent

-- name: purge_finished_webhooks
-- their tries go with them (ON DELETE CASCADE)
DELETE FROM webhooks WHERE seq = ANY (ARRAY(SELECT seq FROM webhooks
    WHERE due_at IS NULL AND processed_at < $1 LIMIT $2))

-- name: purge_processed_bundles
DELETE FROM event_bundles WHERE seq = ANY (ARRAY(SELECT seq FROM event_bundles
    WHERE processed_count >= event_count AND processed_at < $1 ORDER BY seq LIMIT $2))

-- name: purge_idempotency_keys
DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY(SELECT ctid FROM idempotency_keys
    WHERE created_at < $1 LIMIT $2))

-- reports (metrics, the status command, the API's delivery reports)

-- name: has_migrations_table
-- as the other queries find it: in the search path
SELECT count(*) FROM (SELECT to_regclass('schema_migrations') AS t) AS found WHERE t IS NOT NULL

-- name: webhooks_per_minute
-- client $1's webhooks that ended sent or failed (due_at is null) from $2 to before $3, by the minute they
-- ended (integer division of bigints); the planner picks the index of finished webhooks or webhooks_by_client
-- by its statistics
SELECT processed_at / 60000, sum(CASE WHEN status = 'sent' THEN 1 ELSE 0 END),
    sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END)
FROM webhooks WHERE due_at IS NULL AND processed_at >= $2 AND processed_at < $3 AND client_code = $1
GROUP BY processed_at / 60000
