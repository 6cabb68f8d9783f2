-- When the newest change of a capture source's last recorded batch was committed in the source (now, for a
-- batch that only moved the position), so `status` can tell how far behind the source it was then.
ALTER TABLE capture_positions ADD COLUMN committed_at bigint;
