-- 0012 (issue 28; assigned 0014, renumbered after 0011_auto): customers' data.  Who did
-- what to people's data (`audit_log`: never what the data was), the retention job's last run
-- (one run across instances per interval), when a customer was erased, and which
-- conversation a file served at /media/<token> belongs to (so an erasure removes it).

CREATE TABLE audit_log (
    id {{autoid}},
    at {{real}} NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    customer_id BIGINT,
    other_customer_id BIGINT,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at, id);

CREATE TABLE privacy_jobs (
    job TEXT PRIMARY KEY,
    last_run_at {{real}} NOT NULL
);

ALTER TABLE customers ADD COLUMN erased_at {{real}};
ALTER TABLE media ADD COLUMN conversation_id BIGINT;
CREATE INDEX media_conversation ON media (conversation_id);
CREATE INDEX messages_created ON messages (created_at);
