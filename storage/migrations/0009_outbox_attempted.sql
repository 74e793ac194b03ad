-- 0009: when a send of an outbox row was last started.  Written before a Slack call, so that a
-- row still pending with this set has an unknown outcome (the process died, or the call timed
-- out): it is looked up in Slack before it is sent again.
ALTER TABLE outbox ADD COLUMN attempted_at {{real}};
