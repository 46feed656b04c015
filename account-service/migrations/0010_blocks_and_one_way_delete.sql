-- Deleting a contact is one-way (WeChat): A's delete removes A's edge only, B keeps listing A. B's
-- edge remembers it (peer_removed), so B's shard alone can tell that A no longer takes B's messages
-- and that A's messages to B are refused too (neither may message the other until they reconnect).
-- Set by the deleter's shard (PeerRemoved), cleared when the edge is put again (a reconnection).
ALTER TABLE friendships ADD COLUMN peer_removed boolean NOT NULL DEFAULT false;

-- Blocks, on the blocker's shard, apart from friendships: a block outlives deleting the contact and
-- may name a user who never was one. The blocked user's messages and friend requests are refused.
CREATE TABLE blocks (
  user_id    bigint NOT NULL,   -- the blocker
  blocked_id bigint NOT NULL,
  since      timestamptz NOT NULL,
  PRIMARY KEY (user_id, blocked_id)
);
