-- The SQL both dialects speak alike: the store logic's (store/sql_store.py) queries, by name, whose text is
-- the same on SQLite and PostgreSQL. What differs is in sqlite.sql and postgres.sql, under the same names in
-- the same order; every name is in this file or in both of those, never in two places. Arguments are $1 … $n.

-- schema

-- name: applied_migrations
SELECT version FROM schema_migrations

-- name: note_migration
INSERT INTO schema_migrations (version) VALUES ($1)

-- name: probe_write
UPDATE store_probe SET probes = probes + 1

-- name: add_service_secret
INSERT INTO service_secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING

-- name: service_secret
SELECT value FROM service_secrets WHERE name = $1

-- accounts

-- name: any_user
SELECT 1 FROM users LIMIT 1

-- name: add_client
INSERT INTO clients (code, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING

-- name: add_user
INSERT INTO users (client_code, username, password_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id

-- name: find_user
SELECT id, client_code, username, password_hash FROM users WHERE client_code = $1 AND username = $2

-- name: get_user
SELECT id, client_code, username, password_hash FROM users WHERE id = $1

-- name: login_failures
SELECT count(*) FROM login_failures WHERE client_code = $1 AND username = $2 AND failed_at >= $3

-- name: add_login_failure
INSERT INTO login_failures (client_code, username, failed_at) VALUES ($1, $2, $3)

-- name: clear_login_failures
DELETE FROM login_failures WHERE client_code = $1 AND username = $2

-- name: purge_expired_sessions
DELETE FROM sessions WHERE expires_at < $1

-- name: add_session
INSERT INTO sessions (key_hash, user_id, client_code, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)

-- name: find_session
SELECT key_hash, user_id, client_code, created_at, expires_at FROM sessions WHERE key_hash = $1

-- configurations

-- name: list_configurations
SELECT id, client_code, table_name, action, endpoint, secret, disabled, created_at, updated_at, headers,
    previous_secret, previous_secret_until
FROM configurations WHERE client_code = $1 ORDER BY seq

-- name: get_configuration
SELECT id, client_code, table_name, action, endpoint, secret, disabled, created_at, updated_at, headers,
    previous_secret, previous_secret_until
FROM configurations WHERE id = $1 AND client_code = $2

-- name: count_configurations
-- the client's configurations other than $4, and how many of them are for table $2 and action $3
SELECT count(*), coalesce(sum(CASE WHEN table_name = $2 AND action = $3 THEN 1 ELSE 0 END), 0)
FROM configurations WHERE client_code = $1 AND id <> $4

-- name: add_configuration
INSERT INTO configurations (id, client_code, table_name, action, endpoint, secret, disabled, created_at, updated_at,
    headers)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)

-- name: replace_configuration
-- a new secret $4 keeps the one it replaces signing beside it for $10 ms (not with 0, nor an empty one); the
-- same secret keeps a grace under way; a grace that has ended is forgotten (the SET reads the row as it was)
UPDATE configurations SET table_name = $1, action = $2, endpoint = $3, secret = $4, disabled = $5, updated_at = $6,
    headers = $9,
    previous_secret = CASE WHEN secret <> $4 THEN (CASE WHEN CAST($10 AS BIGINT) > 0 AND secret <> '' THEN secret END)
        WHEN previous_secret_until > $6 THEN previous_secret END,
    previous_secret_until = CASE WHEN secret <> $4
        THEN (CASE WHEN CAST($10 AS BIGINT) > 0 AND secret <> '' THEN $6 + CAST($10 AS BIGINT) END)
        WHEN previous_secret_until > $6 THEN previous_secret_until END
WHERE id = $7 AND client_code = $8
RETURNING id, client_code, table_name, action, endpoint, secret, disabled, created_at, updated_at, headers,
    previous_secret, previous_secret_until

-- name: remove_configuration
DELETE FROM configurations WHERE id = $1 AND client_code = $2

-- name: fail_unsent_webhooks
-- not those in flight: their try ends as it ends
UPDATE webhooks SET status = 'failed', due_at = NULL, lease_until = NULL, processed_at = $1, last_failure = $2
WHERE configuration_id = $3 AND due_at IS NOT NULL AND (lease_until IS NULL OR lease_until <= $1)

-- events

-- name: recent_bundles
SELECT seq, event_count, items, created_at, processed_count, processed_at FROM event_bundles
WHERE client_code = $1 AND table_name = $2 AND action = $3 ORDER BY seq DESC LIMIT $4

-- name: capture_position
SELECT position FROM capture_positions WHERE source = $1

-- name: start_capture_position
INSERT INTO capture_positions (source, client_code, position, updated_at, committed_at)
VALUES ($1, $2, $3, $4, CAST($5 AS BIGINT))
ON CONFLICT (source) DO NOTHING

-- name: move_capture_position
UPDATE capture_positions SET position = $2, updated_at = $3, committed_at = coalesce(CAST($5 AS BIGINT), committed_at)
WHERE source = $1 AND position = $4

-- name: forget_capture_position
DELETE FROM capture_positions WHERE source = $1

-- name: forget_capture_tables
DELETE FROM capture_tables WHERE source = $1

-- name: add_capture_table
INSERT INTO capture_tables (source, table_name, client_code, row_id, enriched, updated_at)
VALUES ($1, $2, $3, $4, $5, $6)

-- name: note_event_name
-- at most $5 names per client, so that sending names cannot fill the store
INSERT INTO event_names (client_code, table_name, action, noted_at)
SELECT $1, $2, $3, $4 WHERE (SELECT count(*) FROM event_names WHERE client_code = $1) < $5
ON CONFLICT DO NOTHING

-- name: event_names
SELECT table_name, action FROM event_names WHERE client_code = $1

-- name: claim_idempotency_key
-- a row when this call takes client $1's key $2: it is new, or was kept from before $6 (it counts as unused);
-- no row when a call took it since. On PostgreSQL a call that found the key taken by a transaction still
-- running waits for its end (then takes it only if that one rolled back); the row stays locked either way.
-- recorded starts at 0: answer_idempotency_key sets it when the events are kept
INSERT INTO idempotency_keys (client_code, key, body_hash, received, recorded, created_at)
VALUES ($1, $2, $3, $4, 0, $5)
ON CONFLICT (client_code, key) DO UPDATE SET body_hash = excluded.body_hash, received = excluded.received,
    recorded = 0, created_at = excluded.created_at
WHERE idempotency_keys.created_at < $6
RETURNING created_at

-- name: answer_idempotency_key
UPDATE idempotency_keys SET recorded = $3 WHERE client_code = $1 AND key = $2

-- name: idempotency_key
SELECT body_hash, received, recorded FROM idempotency_keys WHERE client_code = $1 AND key = $2

-- webhooks

-- name: pending_subjects
SELECT DISTINCT client_code, table_name, action FROM event_bundles WHERE processed_count < event_count

-- name: pending_bytes
SELECT coalesce(sum(length(items)), 0) FROM event_bundles WHERE processed_count < event_count

-- name: pending_bundle_sizes
SELECT seq, length(items), event_count - processed_count FROM event_bundles
WHERE client_code = $1 AND table_name = $2 AND action = $3 AND processed_count < event_count ORDER BY seq LIMIT $4

-- name: pending_bundles
SELECT seq, created_at, processed_count, event_count, items FROM event_bundles
WHERE client_code = $1 AND table_name = $2 AND action = $3 AND processed_count < event_count ORDER BY seq LIMIT $4

-- name: endpoints_with_webhooks_due
-- skips through the (endpoint, due_at) index: one probe per endpoint, however many webhooks wait for each
WITH RECURSIVE e(endpoint) AS (
    SELECT min(endpoint) FROM webhooks WHERE due_at IS NOT NULL
    UNION ALL
    SELECT (SELECT min(endpoint) FROM webhooks WHERE due_at IS NOT NULL AND endpoint > e.endpoint)
    FROM e WHERE e.endpoint IS NOT NULL
) SELECT endpoint FROM e WHERE endpoint IS NOT NULL

-- name: release_leases
UPDATE webhooks SET due_at = $1, lease_until = NULL WHERE lease_until IS NOT NULL AND due_at IS NOT NULL

-- name: webhook_seq
SELECT seq FROM webhooks WHERE id = $1 AND client_code = $2

-- name: find_webhook
SELECT id, table_name, action, endpoint, event_count, status, tries, last_failure, created_at, processed_at,
    payload, seq
FROM webhooks WHERE id = $1 AND client_code = $2

-- name: attempts_of_webhook
SELECT at, duration_ms, http_status, error FROM attempts WHERE webhook_seq = $1 ORDER BY try

-- name: resend_webhooks
-- one chunk of a paced bulk resend: up to $3 of client $1's failed webhooks after seq $2, oldest first through
-- webhooks_by_client, only those of table $4, action $5 and configuration $6 created from $7 to before $8 (each
-- null: any); the k-th of the chunk (from 1) is due at $9 + ($10 + k - 1) * 1000 / $11 (integer division): $10
-- were resent before it, $11 a second. Their seqs come back, so the next chunk starts after the last.
UPDATE webhooks SET status = 'pending', round_tries = 0, lease_until = NULL,
    due_at = CAST($9 AS BIGINT) + (CAST($10 AS BIGINT) + picked.k - 1) * 1000 / CAST($11 AS BIGINT)
FROM (SELECT chosen, row_number() OVER (ORDER BY chosen) AS k FROM (SELECT seq AS chosen FROM webhooks
    WHERE client_code = $1 AND seq > $2 AND status = 'failed' AND (CAST($4 AS text) IS NULL OR table_name = $4)
        AND (CAST($5 AS text) IS NULL OR action = $5) AND (CAST($6 AS text) IS NULL OR configuration_id = $6)
        AND (CAST($7 AS BIGINT) IS NULL OR created_at >= $7) AND (CAST($8 AS BIGINT) IS NULL OR created_at < $8)
    ORDER BY seq LIMIT $3) AS chunk) AS picked
WHERE webhooks.seq = picked.chosen AND webhooks.status = 'failed'
RETURNING seq

-- reports (metrics, the status command, the API's delivery reports)

-- name: backlog_events
SELECT coalesce(sum(event_count - processed_count), 0), min(created_at) FROM event_bundles
WHERE processed_count < event_count

-- name: backlog_webhooks
-- over the unsent webhooks only (due_at is set until a webhook is sent or failed); $1 is now
SELECT coalesce(sum(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0),
    coalesce(sum(CASE WHEN status = 'retrying' THEN 1 ELSE 0 END), 0),
    coalesce(sum(CASE WHEN due_at <= $1 AND (lease_until IS NULL OR lease_until <= $1) THEN 1 ELSE 0 END), 0),
    min(CASE WHEN due_at <= $1 AND (lease_until IS NULL OR lease_until <= $1) THEN due_at END),
    coalesce(sum(CASE WHEN lease_until > $1 THEN 1 ELSE 0 END), 0)
FROM webhooks WHERE due_at IS NOT NULL

-- name: endpoint_tries
-- every try since $1 per endpoint (of client $2's webhooks; of every client's for null), counted by duration
-- to two significant digits (exact below 100 ms), so the rows are a few hundred per endpoint at most however
-- many tries there were; attempts has no index on at (it would slow every try's insert): this scans every try
-- kept. CAST gives PostgreSQL the type of $2, which IS NULL alone does not.
SELECT w.endpoint,
    CASE WHEN a.duration_ms < 100 THEN a.duration_ms
        WHEN a.duration_ms < 1000 THEN a.duration_ms / 10 * 10
        WHEN a.duration_ms < 10000 THEN a.duration_ms / 100 * 100
        WHEN a.duration_ms < 100000 THEN a.duration_ms / 1000 * 1000
        ELSE a.duration_ms / 10000 * 10000 END,
    count(*), coalesce(sum(CASE WHEN a.error = '' THEN 1 ELSE 0 END), 0)
FROM attempts a JOIN webhooks w ON w.seq = a.webhook_seq
WHERE a.at >= $1 AND (CAST($2 AS text) IS NULL OR w.client_code = $2)
GROUP BY 1, 2 ORDER BY 1, 2

-- name: endpoint_last_failures
-- the last failed try since $1 per endpoint, of client $2's webhooks or every client's (a scan, as endpoint_tries)
SELECT endpoint, at, error FROM (
    SELECT w.endpoint, a.at, a.error,
        row_number() OVER (PARTITION BY w.endpoint ORDER BY a.at DESC, a.webhook_seq DESC, a.try DESC) AS n
    FROM attempts a JOIN webhooks w ON w.seq = a.webhook_seq
    WHERE a.at >= $1 AND a.error <> '' AND (CAST($2 AS text) IS NULL OR w.client_code = $2)
) AS failures WHERE n = 1

-- name: failed_webhooks
-- newest first, through the index of finished webhooks (walking past the sent ones)
SELECT id, client_code, table_name, action, endpoint, tries, last_failure, processed_at FROM webhooks
WHERE due_at IS NULL AND status = 'failed'
ORDER BY processed_at DESC, seq DESC LIMIT $1

-- name: capture_positions
SELECT source, client_code, position, updated_at, committed_at FROM capture_positions ORDER BY source
