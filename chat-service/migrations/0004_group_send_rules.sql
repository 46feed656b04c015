-- A group's send rules as group-service last pushed them (UpdateMembersRequest.rules): a silenced
-- member may not send (muted, or the whole group muted and not its owner or an admin); a privileged
-- member (owner or admin) may mention everyone. Direct conversations keep both false.
ALTER TABLE conversation_members
  ADD COLUMN silenced boolean NOT NULL DEFAULT false,
  ADD COLUMN privileged boolean NOT NULL DEFAULT false;
