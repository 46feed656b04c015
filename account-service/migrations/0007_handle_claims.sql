-- Settable handles are unique across the whole cluster, case-insensitively. users.handle_lower is
-- unique only within a shard, so every handle a user sets is first claimed here, on the account
-- shard ShardOfHandle(handle_lower) (common/shard.h), whichever shard the user lives on: one row per
-- handle ever set, and the row's primary key decides between concurrent claims from any shards.
-- Random handles ("u_" + 10 characters, a prefix a user may not set) are never claimed.
CREATE TABLE handle_claims (
  handle_lower text PRIMARY KEY,
  user_id      bigint NOT NULL,          -- who holds it
  claimed_at   timestamptz NOT NULL,
  hold_until   timestamptz NULL          -- NULL: in use; else released, claimable by others from then
);
