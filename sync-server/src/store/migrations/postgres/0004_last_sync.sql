-- When each device last synced (written at most every few minutes per device), for the
-- console's devices page and dashboard.
ALTER TABLE devices ADD COLUMN last_sync_at BIGINT;
