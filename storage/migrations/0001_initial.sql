-- 0001: customers, identities, conversations, messages, the outbox and connector state.
-- Dialect tokens ({{...}}) are expanded by storage/dialect.py.

CREATE TABLE customers (
    id {{autoid}},
    display_name TEXT NOT NULL DEFAULT '',
    created_at {{real}} NOT NULL
);

CREATE TABLE identities (
    id {{autoid}},
    customer_id BIGINT NOT NULL REFERENCES customers(id),
    connector TEXT NOT NULL,
    address TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    username TEXT,
    created_at {{real}} NOT NULL,
    UNIQUE (connector, address)
);

CREATE TABLE conversations (
    id {{autoid}},
    customer_id BIGINT NOT NULL REFERENCES customers(id),
    identity_id BIGINT NOT NULL REFERENCES identities(id),
    connector TEXT NOT NULL,
    address TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    slack_channel TEXT,
    slack_thread_ts TEXT,
    created_at {{real}} NOT NULL,
    updated_at {{real}} NOT NULL,
    last_inbound_at {{real}}
);
CREATE INDEX conversations_customer_status ON conversations (customer_id, status);
CREATE UNIQUE INDEX conversations_thread ON conversations (slack_channel, slack_thread_ts);

CREATE TABLE messages (
    id {{autoid}},
    conversation_id BIGINT NOT NULL REFERENCES conversations(id),
    direction TEXT NOT NULL,
    connector TEXT NOT NULL,
    platform_message_id TEXT,
    platform_ref TEXT,
    sent_platform_id TEXT,
    text TEXT NOT NULL DEFAULT '',
    attachments TEXT NOT NULL DEFAULT '[]',
    author_name TEXT NOT NULL DEFAULT '',
    author_slack_user TEXT,
    slack_channel TEXT,
    slack_ts TEXT,
    state TEXT NOT NULL,
    error TEXT,
    created_at {{real}} NOT NULL,
    platform_time {{real}},
    UNIQUE (connector, platform_message_id),
    UNIQUE (slack_channel, slack_ts)
);
CREATE INDEX messages_conversation ON messages (conversation_id, id);

CREATE TABLE outbox (
    id {{autoid}},
    kind TEXT NOT NULL,
    lane TEXT NOT NULL,
    conversation_id BIGINT NOT NULL REFERENCES conversations(id),
    message_id BIGINT REFERENCES messages(id),
    payload TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at {{real}} NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at {{real}} NOT NULL,
    updated_at {{real}} NOT NULL
);
CREATE INDEX outbox_status ON outbox (status, id);

CREATE TABLE slack_events (
    event_id TEXT PRIMARY KEY,
    received_at {{real}} NOT NULL
);

CREATE TABLE connector_state (
    connector TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at {{real}} NOT NULL,
    PRIMARY KEY (connector, key)
);
