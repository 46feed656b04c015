-- Per-phone cap on wrong codes across all codes of the phone's 24 h window
-- (limits.max_code_failures_per_phone_per_day). Reset with day_count when a new window starts.
ALTER TABLE phone_codes ADD COLUMN day_failures integer NOT NULL DEFAULT 0;
