-- The transactional outbox (common/outbox.h), part of every service database: events that must not
-- be lost when a process dies between its commit and its publish are written here in the same
-- transaction. The publisher deletes a row once the event was delivered; the relay re-publishes rows
-- that were not deleted by next_relay_at.
CREATE TABLE event_outbox (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- relay order
  topic         text NOT NULL,                                   -- which handler relays it
  payload       bytea NOT NULL,                                  -- the topic's serialized event
  created_at    timestamptz NOT NULL DEFAULT now(),
  next_relay_at timestamptz NOT NULL,                            -- not relayed before this
  relays        integer NOT NULL DEFAULT 0                       -- times the relay re-published it
);
CREATE INDEX event_outbox_due ON event_outbox (next_relay_at);
