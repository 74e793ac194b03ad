-- 0008: teams (issue 19).  A conversation and a customer carry tags (space-separated words,
-- sorted); a conversation moved to another team's channel leaves its old thread in
-- `moved_threads`, so a reply written there is recognised (and not sent).

ALTER TABLE conversations ADD COLUMN tags TEXT NOT NULL DEFAULT '';
ALTER TABLE customers ADD COLUMN tags TEXT NOT NULL DEFAULT '';

CREATE TABLE moved_threads (
    slack_channel TEXT NOT NULL,
    slack_thread_ts TEXT NOT NULL,
    conversation_id BIGINT NOT NULL REFERENCES conversations(id),
    team TEXT NOT NULL,
    actor TEXT NOT NULL,
    moved_at {{real}} NOT NULL,
    PRIMARY KEY (slack_channel, slack_thread_ts)
);
CREATE INDEX moved_threads_conversation ON moved_threads (conversation_id);
