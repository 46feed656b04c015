-- Phone numbers get a table of their own, on the shard ShardOfPhone(phone) (common/shard.h), the
-- one that verifies its codes: a user who changes number keeps their account (and shard) while the
-- new number lives on its own shard, so users.phone can no longer be what makes a number unique.
-- phones is the authority for "which account is this number"; users.phone is the account's copy,
-- shown to its owner only.
CREATE TABLE phones (
  phone      text PRIMARY KEY,          -- E.164
  user_id    bigint NOT NULL,           -- the account it signs in to (on any shard)
  claimed_at timestamptz NOT NULL,
  free_from  timestamptz NULL           -- NULL: in use; else released, a new sign-up may take it from then
);
INSERT INTO phones (phone, user_id, claimed_at) SELECT phone, id, created_at FROM users;

-- A deleted account keeps its row (history names its id) but nothing that identifies it: its phone
-- goes (the phones row holds it until the number may sign up again), its handle is released, its
-- sessions, friendships and pending requests are deleted, and others see a "deleted user".
ALTER TABLE users ADD COLUMN deleted_at timestamptz NULL;
ALTER TABLE users ALTER COLUMN phone DROP NOT NULL;
