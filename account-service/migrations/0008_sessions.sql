-- Sessions: one row per signed-in device of a user, on the user's shard. A token names its session
-- and generation (common/token.h); CheckAccount admits it only while the row exists with that
-- token_gen and has not expired. A refresh moves token_gen on (the token it replaced dies), a log-out
-- deletes the row, and a log-in on a device id the user already has replaces that device's row.
-- Tokens from before this table name no session and are refused: every device logs in once more.
CREATE TABLE sessions (
  user_id        bigint NOT NULL,
  session_id     bigint NOT NULL CHECK (session_id > 0),
  token_gen      integer NOT NULL DEFAULT 1,
  device_id      text NOT NULL,
  device_name    text NOT NULL DEFAULT '',
  platform       text NOT NULL DEFAULT '',
  created_at     timestamptz NOT NULL,
  last_active_at timestamptz NOT NULL,
  expires_at     timestamptz NOT NULL,
  PRIMARY KEY (user_id, session_id),
  UNIQUE (user_id, device_id)
);
