-- Wrong codes lock the code they were entered for (code_max_tries), never the phone: a per-phone
-- failure cap let a stranger who knows a number lock its owner out for a day. Guessing is bounded
-- per client address instead (limits.account.address_code_checks_per_hour and
-- address_phone_code_checks_per_day, Redis quotas).
ALTER TABLE phone_codes DROP COLUMN day_failures;
