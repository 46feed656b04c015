-- The group-service membership version each group conversation was last brought to
-- (UpdateMembersRequest.membership_version). UpdateMembers ignores a versioned request at or below
-- it, so a delayed push can never undo a newer change (a late "add U" after "remove U").
-- 0 = no versioned update applied yet; direct conversations keep 0.
ALTER TABLE conversations ADD COLUMN membership_version bigint NOT NULL DEFAULT 0;
