-- 0016: the web chat, part 2 (issue 26).
-- An identity made from an address nobody proved (the web chat's offline prompt): it only
-- says where to deliver replies, and is never evidence that two customers are one person.
ALTER TABLE identities ADD COLUMN unverified INTEGER NOT NULL DEFAULT 0;
-- Replies sent to this identity are also shown on that one (the web chat the address was
-- left in): no foreign key, copy order is by id.
ALTER TABLE identities ADD COLUMN shown_on BIGINT;
-- The invitation (its text) a conversation was opened after, for the KPIs.
ALTER TABLE conversations ADD COLUMN invitation TEXT;
