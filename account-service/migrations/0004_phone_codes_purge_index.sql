-- Rows of phone_codes are purged once their code expired more than a day ago and their 24 h window
-- is over (see store::PurgeExpiredCodes); this index finds them without a full scan.
CREATE INDEX phone_codes_expires_at ON phone_codes (expires_at);
