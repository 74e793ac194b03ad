-- Automatic answers (issue 21; assigned number 0012, numbered 0011 until the hours
-- migration reaches main).  One row per automatic answer the bridge decided to give, unique per conversation, kind and period, so a closed reply goes out once per closed
-- period, a greeting once per conversation, an FAQ answer once per customer message, and a
-- customer's request for a person is recorded once (kind 'person': the FAQ stops there).
-- kind: closed, greeting, faq, person.  period: the closed period (its reopening instant),
-- the customer message answered (faq), or '' (greeting, person).
CREATE TABLE auto_answers (
    id {{autoid}},
    conversation_id BIGINT NOT NULL REFERENCES conversations(id),
    kind TEXT NOT NULL,
    period TEXT NOT NULL DEFAULT '',
    message_id BIGINT REFERENCES messages(id),
    score {{real}},
    created_at {{real}} NOT NULL,
    UNIQUE (conversation_id, kind, period)
);
