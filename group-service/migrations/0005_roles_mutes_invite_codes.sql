-- Issue 11: roles, mutes and invite codes.
-- groups.version now counts every change chat-service must see (membership, roles, mutes, renames,
-- settings), not only membership: each is a versioned push with its system notice.
ALTER TABLE groups ADD COLUMN all_muted boolean NOT NULL DEFAULT false;  -- only owner and admins may send
ALTER TABLE group_members ADD COLUMN muted boolean NOT NULL DEFAULT false;
-- Invite codes are stored by the SHA-256 (hex) of the whole token, never the token itself: a copy of
-- the database admits nobody. created_by must still be a member for the code to admit anyone.
COMMENT ON COLUMN invite_codes.code IS 'hex SHA-256 of the invite code token';
CREATE INDEX invite_codes_expiry_idx ON invite_codes (group_id, expires_at);
