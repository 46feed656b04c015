-- group-service schema: groups, their members, the membership log used to re-drive chat-service,
-- and invite codes (table only; codes come in a later issue). One database per group shard; every
-- row of a group lives on ShardOfGroup(id).

CREATE TABLE groups (
  id                  bigint PRIMARY KEY,           -- random positive 63-bit, ShardOfGroup(id) = this shard
  name                text NOT NULL DEFAULT '',
  owner_id            bigint NOT NULL,
  created_by          bigint NOT NULL,
  created_at          timestamptz NOT NULL DEFAULT now(),
  member_count        integer NOT NULL CHECK (member_count >= 0),
  invite_confirmation boolean NOT NULL DEFAULT false,  -- owner's switch: invitations need approval
  announcement        text NULL,
  announcement_by     bigint NULL,
  announcement_at     timestamptz NULL,
  dissolved_at        timestamptz NULL,             -- set when the last member left (or the owner dissolved it)
  -- Membership version: bumped by every committed membership change. chat_synced_version is the
  -- newest version chat-service is known to have applied; while it lags, the next operation on
  -- the group re-drives UpdateMembers from group_membership_log.
  version             bigint NOT NULL DEFAULT 1,
  chat_synced_version bigint NOT NULL DEFAULT 0,
  updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE group_members (
  group_id    bigint NOT NULL REFERENCES groups(id),
  user_id     bigint NOT NULL,
  role        smallint NOT NULL,                    -- chat.v1.GroupRole: 1 member, 2 admin, 3 owner
  alias       text NULL,                            -- per-group nickname
  joined_at   timestamptz NOT NULL DEFAULT now(),
  join_order  bigint GENERATED ALWAYS AS IDENTITY,  -- ties of joined_at: who joined first
  invited_by  bigint NULL,
  muted_until timestamptz NULL,
  PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user_idx ON group_members (user_id);
-- At most one owner per group.
CREATE UNIQUE INDEX group_members_one_owner ON group_members (group_id) WHERE role = 3;

-- Who joined (added) or left at which membership version. Rows at or below chat_synced_version
-- are pruned once chat-service has applied them.
CREATE TABLE group_membership_log (
  group_id bigint NOT NULL REFERENCES groups(id),
  version  bigint NOT NULL,
  user_id  bigint NOT NULL,
  added    boolean NOT NULL,
  at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (group_id, version, user_id)
);

CREATE TABLE invite_codes (
  code       text PRIMARY KEY,
  group_id   bigint NOT NULL REFERENCES groups(id),
  created_by bigint NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz NULL
);
CREATE INDEX invite_codes_group_idx ON invite_codes (group_id);
