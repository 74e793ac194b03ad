-- 0003: leases, for several bridge instances on one database (PostgreSQL).
-- kind 'lane': which instance works an outbox lane (one conversation and direction);
-- kind 'singleton': which instance runs a once-per-deployment job (Telegram polling...).
-- A lease is valid until `until`; its owner renews it, and anyone may take it once expired.

CREATE TABLE leases (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    until {{real}} NOT NULL,
    PRIMARY KEY (kind, name)
);
CREATE INDEX leases_owner ON leases (owner, kind);
CREATE INDEX outbox_lane_pending ON outbox (status, lane, id);
