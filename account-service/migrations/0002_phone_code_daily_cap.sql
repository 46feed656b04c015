-- Per-phone daily cap on codes sent (limits.max_codes_per_phone_per_day). The window is 24 h from the
-- first code of the window (day_start); day_count codes were sent in it. A phone's row now outlives
-- its code: a used or withdrawn code is blanked (code_hash '', expires_at and sent_at at the epoch)
-- instead of deleting the row, so the counters survive until the window is over.
ALTER TABLE phone_codes ADD COLUMN day_start timestamptz;
ALTER TABLE phone_codes ADD COLUMN day_count integer NOT NULL DEFAULT 1;
UPDATE phone_codes SET day_start = sent_at;
ALTER TABLE phone_codes ALTER COLUMN day_start SET NOT NULL;
