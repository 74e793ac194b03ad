-- 0014: canned replies (issue 22).  Replies agents save from Slack: `scope` is 'user:<Slack
-- id>' for a personal reply or 'team:<team name>' for one the team shares (team replies kept
-- in files under `[canned] dir` are not stored).  A preview an agent was shown is kept until
-- sent or cancelled, so a click on *Send* reaching any instance sends it exactly once.
CREATE TABLE canned_replies (
    id {{autoid}},
    scope TEXT NOT NULL,
    name TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    body TEXT NOT NULL,
    owner TEXT NOT NULL,
    created_at {{real}} NOT NULL,
    updated_at {{real}} NOT NULL,
    UNIQUE (scope, name)
);

-- state: ready (shown), sending (Send clicked, the post under way), sent, cancelled.
CREATE TABLE canned_previews (
    token TEXT PRIMARY KEY,
    conversation_id BIGINT NOT NULL REFERENCES conversations(id),
    slack_channel TEXT NOT NULL,
    thread_ts TEXT NOT NULL,
    slack_user TEXT NOT NULL,
    name TEXT NOT NULL,
    text TEXT NOT NULL,
    attachments TEXT NOT NULL DEFAULT '[]',
    state TEXT NOT NULL DEFAULT 'ready',
    post_ts TEXT,
    created_at {{real}} NOT NULL,
    updated_at {{real}} NOT NULL
);
CREATE INDEX canned_previews_conversation ON canned_previews (conversation_id);
