-- Labels (WeChat "tags"): a user's private named sets of their contacts, on the user's shard. Moments
-- audiences will name them. A member must be one of the owner's contacts; deleting the contact takes
-- it out of every label.
CREATE TABLE contact_labels (
  user_id    bigint NOT NULL,
  label_id   bigint NOT NULL,
  name       text NOT NULL,
  created_at timestamptz NOT NULL,
  PRIMARY KEY (user_id, label_id),
  UNIQUE (user_id, name)
);
CREATE TABLE contact_label_members (
  user_id   bigint NOT NULL,
  label_id  bigint NOT NULL,
  friend_id bigint NOT NULL,
  PRIMARY KEY (user_id, label_id, friend_id),
  FOREIGN KEY (user_id, label_id) REFERENCES contact_labels (user_id, label_id) ON DELETE CASCADE
);
CREATE INDEX contact_label_members_friend ON contact_label_members (user_id, friend_id);
