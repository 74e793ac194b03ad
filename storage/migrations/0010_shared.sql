-- 0010: what the issues 20-28 share, written once so they can be built side by side.
-- `messages.origin` tells who produced an outbound message: 'person' (the customer or an
-- agent, the default), 'auto' (a closed reply or greeting), 'faq' (an FAQ answer), 'survey'
-- (a CSAT or NPS question).  Only 'person' rows written by an agent count as responses.
ALTER TABLE messages ADD COLUMN origin TEXT NOT NULL DEFAULT 'person';

-- Custom fields of a customer (`!field <key> <value>`), for templates and exports.
CREATE TABLE customer_fields (
    customer_id BIGINT NOT NULL REFERENCES customers(id),
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    set_by TEXT NOT NULL,
    updated_at {{real}} NOT NULL,
    PRIMARY KEY (customer_id, name)
);

-- Response-time targets (issue 20): one row per target a conversation runs against.  kind is
-- first_response, next_response or resolution; state running, paused, met, missed or
-- cancelled.  Times are wall-clock epoch seconds; business_seconds is the business time the
-- target took (set when met or missed).  The KPIs (issue 24) read these rows.
CREATE TABLE response_targets (
    id {{autoid}},
    conversation_id BIGINT NOT NULL REFERENCES conversations(id),
    team TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'running',
    assignee TEXT,
    started_at {{real}} NOT NULL,
    due_at {{real}},
    warned_at {{real}},
    met_at {{real}},
    missed_at {{real}},
    business_seconds {{real}},
    updated_at {{real}} NOT NULL
);
CREATE INDEX response_targets_due ON response_targets (state, due_at);
CREATE INDEX response_targets_conversation ON response_targets (conversation_id, kind);

-- Satisfaction surveys (issue 23): one CSAT per conversation, NPS at most once per customer
-- per interval.  state: scheduled, sent, answered, cancelled, blocked (with reason).
CREATE TABLE surveys (
    id {{autoid}},
    conversation_id BIGINT NOT NULL REFERENCES conversations(id),
    customer_id BIGINT NOT NULL REFERENCES customers(id),
    kind TEXT NOT NULL,
    team TEXT NOT NULL DEFAULT '',
    assignee TEXT,
    connector TEXT NOT NULL,
    token TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    scale TEXT NOT NULL,
    score INTEGER,
    comment TEXT,
    created_at {{real}} NOT NULL,
    sent_at {{real}},
    answered_at {{real}},
    expires_at {{real}},
    UNIQUE (token),
    UNIQUE (conversation_id, kind)
);
CREATE INDEX surveys_customer ON surveys (customer_id, kind, sent_at);
