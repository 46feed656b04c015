-- The event outbox (common/migrations/0000_common_event_outbox.sql) replaces the chat reconciler:
-- every membership change now has its outbox row until chat-service has it. Groups whose chat copy
-- lagged when this migration ran get one full re-sync row each (topic "group.sync", payload the
-- group id in decimal), relayed at once.
INSERT INTO event_outbox (topic, payload, next_relay_at)
SELECT 'group.sync', convert_to(id::text, 'UTF8'), now() FROM groups WHERE chat_synced_version < version ORDER BY id;
-- Only the reconciler walked this index.
DROP INDEX groups_chat_lagging;
