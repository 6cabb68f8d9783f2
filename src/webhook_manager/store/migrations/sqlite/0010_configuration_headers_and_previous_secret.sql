-- Custom headers sent with every try of a configuration's webhooks (a JSON object of name to value), and the
-- secret a replacement changed, which signs beside the new one until previous_secret_until (docs/payload.md).
ALTER TABLE configurations ADD COLUMN headers TEXT NOT NULL DEFAULT '{}';
ALTER TABLE configurations ADD COLUMN previous_secret TEXT;
ALTER TABLE configurations ADD COLUMN previous_secret_until INTEGER;
