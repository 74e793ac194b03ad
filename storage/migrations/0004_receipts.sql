-- 0004: delivery receipts.  `sent_ids` maps each platform message id a send produced to our
-- message; `receipts` keeps every status callback, including those that arrive before the
-- send's own commit (they are applied when it lands) or for ids we never sent (ignored).

CREATE TABLE sent_ids (
    connector TEXT NOT NULL,
    platform_id TEXT NOT NULL,
    message_id BIGINT NOT NULL REFERENCES messages(id),
    PRIMARY KEY (connector, platform_id)
);

CREATE TABLE receipts (
    connector TEXT NOT NULL,
    platform_id TEXT NOT NULL,
    state TEXT NOT NULL,
    error TEXT,
    received_at {{real}} NOT NULL,
    PRIMARY KEY (connector, platform_id, state)
);
