-- Groups whose chat conversation lags their membership (the chat reconciler's work list). Small:
-- a group is in it only between a committed change and chat-service applying it.
CREATE INDEX groups_chat_lagging ON groups (id) WHERE chat_synced_version < version;
