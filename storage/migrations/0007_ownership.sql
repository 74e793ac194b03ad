-- 0007: who owns a conversation, and where it stands.  The conversation keeps its assignee
-- (a Slack user id), its status (open, pending, snoozed, closed), when and by whom that last
-- changed, and a snooze's end; every change of either is a row of `conversation_changes`.

ALTER TABLE conversations ADD COLUMN assignee TEXT;
ALTER TABLE conversations ADD COLUMN status_at {{real}};
ALTER TABLE conversations ADD COLUMN status_by TEXT;
ALTER TABLE conversations ADD COLUMN snooze_until {{real}};
UPDATE conversations SET status_at = closed_at, status_by = closed_by WHERE status = 'closed';
-- The snoozes due: the wake-up scan reads this index only.
CREATE INDEX conversations_snoozed ON conversations (status, snooze_until);

CREATE TABLE conversation_changes (
    id {{autoid}},
    conversation_id BIGINT NOT NULL REFERENCES conversations(id),
    kind TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT,
    until_at {{real}},
    actor TEXT NOT NULL,
    created_at {{real}} NOT NULL
);
CREATE INDEX conversation_changes_conversation ON conversation_changes (conversation_id, id);
