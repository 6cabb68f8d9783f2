-- Failed logins, one row each, so that the block is a sliding window: a (client, username) pair is blocked
-- while it has login_max_failures failures within the last login_block_s. A run of counts made by the first
-- version could be kept going for ever by one wrong try per block period; its rows are dropped (they cover at
-- most one block period).
DROP TABLE login_failures;
CREATE TABLE login_failures (
    client_code  text NOT NULL,
    username     text NOT NULL,
    failed_at    bigint NOT NULL
);
CREATE INDEX login_failures_by_pair ON login_failures (client_code, username, failed_at);
CREATE INDEX login_failures_by_time ON login_failures (failed_at);
