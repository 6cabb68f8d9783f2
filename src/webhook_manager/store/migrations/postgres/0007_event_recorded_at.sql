-- When the oldest event of each webhook was recorded, so the age of events when their webhook is first sent
-- (recording to sending) can be measured (docs/metrics.md). NULL for webhooks formed before this migration.
ALTER TABLE webhooks ADD COLUMN recorded_at bigint;
