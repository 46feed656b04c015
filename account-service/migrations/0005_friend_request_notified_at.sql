-- When the receiver was last told about a pending request (a friendRequest event). A re-sent request
-- refreshes the row but notifies again only when this is older than limits.account.friend_request_renotify_s.
ALTER TABLE friend_requests ADD COLUMN notified_at timestamptz NOT NULL DEFAULT now();
