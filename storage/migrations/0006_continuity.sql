-- 0006: one customer across channels.  Identities carry their channel; phone numbers a
-- platform proved are kept as claims (identities proving the same number are one customer);
-- every joining of two customers is a link row that says how, by whom and when, and what it
-- moved, so that it can be undone; handoff codes are kept as hashes, single-use, expiring.

ALTER TABLE identities ADD COLUMN channel TEXT NOT NULL DEFAULT '';
UPDATE identities SET channel = CASE
    WHEN connector = 'twilio' AND address LIKE 'whatsapp:%' THEN 'whatsapp'
    WHEN connector = 'twilio' THEN 'sms'
    ELSE connector END;
CREATE INDEX identities_customer ON identities (customer_id, id);

-- No foreign key: a conversation may join one created after it (copy order is by id).
ALTER TABLE conversations ADD COLUMN merged_into BIGINT;
ALTER TABLE messages ADD COLUMN identity_id BIGINT REFERENCES identities(id);

CREATE TABLE identity_claims (
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    identity_id BIGINT NOT NULL REFERENCES identities(id),
    created_at {{real}} NOT NULL,
    PRIMARY KEY (kind, value, identity_id)
);
CREATE INDEX identity_claims_identity ON identity_claims (identity_id);

-- No claims are carried over: each identity claims its number with its next message, and the
-- second identity to claim a number is the one that links (so existing pairs link then too).

CREATE TABLE links (
    id {{autoid}},
    customer_id BIGINT NOT NULL REFERENCES customers(id),
    other_customer_id BIGINT NOT NULL REFERENCES customers(id),
    method TEXT NOT NULL,
    evidence TEXT NOT NULL DEFAULT '',
    actor TEXT NOT NULL,
    moved TEXT NOT NULL DEFAULT '{}',
    created_at {{real}} NOT NULL,
    undone_at {{real}},
    undone_by TEXT
);
CREATE INDEX links_customer ON links (customer_id, id);

CREATE TABLE handoff_codes (
    code_hash TEXT PRIMARY KEY,
    customer_id BIGINT NOT NULL REFERENCES customers(id),
    conversation_id BIGINT NOT NULL REFERENCES conversations(id),
    channel TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at {{real}} NOT NULL,
    expires_at {{real}} NOT NULL,
    used_at {{real}},
    used_by BIGINT REFERENCES identities(id)
);
