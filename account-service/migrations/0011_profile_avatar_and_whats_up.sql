-- The rest of a profile (protocol.md 7.1): an avatar as a media reference (an id the media service
-- mints; "" = none) and a "what's up" line. Both are public like the display name, and cleared when the
-- account is deleted.
ALTER TABLE users ADD COLUMN avatar_media_id text NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN whats_up text NOT NULL DEFAULT '';
