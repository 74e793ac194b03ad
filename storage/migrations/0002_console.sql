-- 0002: the agent console grows up: close and reopen, formatted text, edits, files by link.

ALTER TABLE conversations ADD COLUMN closed_at {{real}};
ALTER TABLE conversations ADD COLUMN closed_by TEXT;
ALTER TABLE conversations ADD COLUMN previous_id BIGINT REFERENCES conversations(id);
CREATE INDEX conversations_customer ON conversations (customer_id, id);

ALTER TABLE messages ADD COLUMN markup TEXT;
ALTER TABLE messages ADD COLUMN edit_of TEXT;
CREATE INDEX messages_platform_ref ON messages (conversation_id, platform_ref);

-- Files the bridge serves at GET /media/<token> to platforms that fetch media by URL.
CREATE TABLE media (
    token TEXT PRIMARY KEY,
    filename TEXT NOT NULL,
    mime_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    data {{blob}} NOT NULL,
    created_at {{real}} NOT NULL,
    expires_at {{real}} NOT NULL
);
CREATE INDEX media_expires ON media (expires_at);
