-- CreateGroupRequest.client_request_id: the creator's idempotency key for create_group. A retry
-- with the same key by the same creator finds the group the first attempt created. NULL for
-- groups created without a key (NULLs never collide, so those are unaffected).
ALTER TABLE groups ADD COLUMN client_request_id text NULL;
ALTER TABLE groups ADD CONSTRAINT groups_creator_request_key UNIQUE (created_by, client_request_id);
