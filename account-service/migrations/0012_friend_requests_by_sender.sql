-- A user's outgoing requests (list_friend_requests with outgoing): each shard lists the requests its
-- users received from that sender.
CREATE INDEX friend_requests_from_created ON friend_requests (from_user, created_at DESC);
