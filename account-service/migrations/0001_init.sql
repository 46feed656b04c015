-- account-service schema, one database per account shard. Every row of a shard belongs to users with
-- ShardOfUser(id) == that shard (phone codes: ShardOfPhone(phone)). Times are timestamptz written
-- from the service's clock (never now()), so tests can inject time.

CREATE TABLE users (
  id                 bigint PRIMARY KEY CHECK (id > 0),
  phone              text NOT NULL UNIQUE,          -- E.164; never leaves this service except to its owner
  handle             text NOT NULL,                 -- as the user chose (or random "u_..."), shown to others
  handle_lower       text NOT NULL UNIQUE,          -- lower(handle): lookups are case-insensitive
  display_name       text NOT NULL,
  created_at         timestamptz NOT NULL,
  handle_changed_at  timestamptz NULL,              -- NULL = never changed by the user (once per 365 days)
  allow_phone_lookup boolean NOT NULL DEFAULT false -- "find me by phone number" opt-in (off by default)
);

-- At most one live code per phone. Only an HMAC of the code is stored.
CREATE TABLE phone_codes (
  phone      text PRIMARY KEY,
  code_hash  text NOT NULL,
  expires_at timestamptz NOT NULL,
  tries      integer NOT NULL DEFAULT 0,
  sent_at    timestamptz NOT NULL
);

-- Pending friend requests, stored on the shard of the receiver (to_user). Re-sending refreshes it.
CREATE TABLE friend_requests (
  to_user    bigint NOT NULL,
  from_user  bigint NOT NULL,
  greeting   text NOT NULL DEFAULT '',
  source     integer NOT NULL DEFAULT 0,            -- chat.v1.FriendRequestSource
  created_at timestamptz NOT NULL,
  PRIMARY KEY (to_user, from_user)
);
CREATE INDEX friend_requests_to_created ON friend_requests (to_user, created_at DESC);

-- One direction of a friendship, stored on the shard of user_id. Deleting is one-way (WeChat), so
-- each side owns its edge; remark and blocked are the owner's private settings.
CREATE TABLE friendships (
  user_id   bigint NOT NULL,
  friend_id bigint NOT NULL,
  since     timestamptz NOT NULL,
  remark    text NULL,
  blocked   boolean NOT NULL DEFAULT false,
  PRIMARY KEY (user_id, friend_id)
);
