-- Invitations that wait for someone (issue 11): for the invitee's answer (a group of
-- limits.group.invitee_accepts_from_members or more), or for an owner's or admin's approval (the group
-- in invitation-confirmation mode; also a join by invite code there). One row per (group, invitee): a
-- new invitation replaces a pending one. Rows past expires_at admit nobody and are dropped when the
-- next invitation of their group is written.
CREATE TABLE group_invitations (
  group_id   bigint NOT NULL REFERENCES groups(id),
  invitee    bigint NOT NULL,
  inviter    bigint NOT NULL,                -- the member who invited, or the maker of the code used
  by_code    boolean NOT NULL DEFAULT false, -- a join by invite code awaiting approval
  state      smallint NOT NULL,              -- 1 awaiting approval, 2 awaiting the invitee
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (group_id, invitee)
);
CREATE INDEX group_invitations_by_invitee ON group_invitations (invitee) WHERE state = 2;
