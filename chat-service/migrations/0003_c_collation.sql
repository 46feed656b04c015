-- Identifiers compare byte-wise. The cluster's default collation (often C.UTF-8 or en_US.UTF-8)
-- would make every b-tree comparison on these keys go through strcoll, which was the largest single
-- cost of the send statement (docs/benchmarks.md). Conversation ids, message ids and client_msg_ids
-- are opaque identifiers: no query sorts them for people.
ALTER TABLE conversation_members DROP CONSTRAINT IF EXISTS conversation_members_conversation_id_fkey;
ALTER TABLE conversations ALTER COLUMN id TYPE text COLLATE "C";
ALTER TABLE conversation_members ALTER COLUMN conversation_id TYPE text COLLATE "C";
ALTER TABLE conversation_members
  ADD CONSTRAINT conversation_members_conversation_id_fkey FOREIGN KEY (conversation_id) REFERENCES conversations(id);
ALTER TABLE messages
  ALTER COLUMN conversation_id TYPE text COLLATE "C",
  ALTER COLUMN message_id TYPE text COLLATE "C",
  ALTER COLUMN client_msg_id TYPE text COLLATE "C";
