-- chat-service schema (one database per chat shard). Owned by chat-service only.
--
-- Invariants:
--  * conversations.last_seq is the highest seq in messages for that conversation; it is bumped
--    with UPDATE ... RETURNING in the same transaction that inserts the message, so the row lock
--    serializes writers across replicas and seq stays gapless and strictly increasing.
--  * members_version is bumped by every membership change so caches of the member list can tell
--    they are stale (the send path returns it with the new seq at no extra cost).

CREATE TABLE conversations (
  id               text PRIMARY KEY,             -- "d.<lo>.<hi>" or "g.<group id>"
  kind             smallint NOT NULL,            -- 1 direct, 2 group (chat.v1.ConversationKind)
  group_id         bigint,                       -- group conversations only
  last_seq         bigint NOT NULL DEFAULT 0,
  last_message_ms  bigint NOT NULL DEFAULT 0,
  members_version  bigint NOT NULL DEFAULT 0,
  retention_ms     bigint,                       -- reserved: per-conversation retention override
  created_at       timestamptz NOT NULL DEFAULT now()
);

-- Membership with the seq window a member may read: (joined_seq, left_seq]. Direct conversations
-- have both users with joined_seq 0 and never leave.
CREATE TABLE conversation_members (
  conversation_id  text NOT NULL REFERENCES conversations(id),
  user_id          bigint NOT NULL,
  joined_seq       bigint NOT NULL DEFAULT 0,
  left_seq         bigint,                       -- NULL while a current member
  read_seq         bigint NOT NULL DEFAULT 0,    -- never moves back
  PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX conversation_members_by_user ON conversation_members (user_id);

-- No foreign key to conversations on purpose: the row is always locked and bumped in the same
-- transaction, and the extra lookup would sit on the hot send path.
CREATE TABLE messages (
  conversation_id  text NOT NULL,
  seq              bigint NOT NULL,
  message_id       text NOT NULL,                -- "<conversation id>:<seq>"
  sender_id        bigint NOT NULL,              -- 0 = system notice
  client_msg_id    text NOT NULL,
  server_time_ms   bigint NOT NULL,
  content          bytea,                        -- serialized chat.v1.MessageContent; NULL once recalled or purged
  recalled_at      timestamptz,                  -- reserved: recall by the sender
  purged_at        timestamptz,                  -- reserved: retention purge of the body
  mentions         bigint[],                     -- reserved: @mentioned user ids (0 = @all)
  PRIMARY KEY (conversation_id, seq),
  UNIQUE (conversation_id, sender_id, client_msg_id)
);
