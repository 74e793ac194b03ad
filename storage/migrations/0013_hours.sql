-- 0013: response-time targets (issue 20) beyond 0010's table.  target_seconds is the
-- business time allowed; warn_at the instant 80 % of it is gone (moved, like due_at, when a
-- paused clock runs again); left_seconds the business time left while paused.  One target
-- per conversation, kind and start: of several instances starting it at once, one row stays.
ALTER TABLE response_targets ADD COLUMN target_seconds {{real}};
ALTER TABLE response_targets ADD COLUMN warn_at {{real}};
ALTER TABLE response_targets ADD COLUMN left_seconds {{real}};
CREATE UNIQUE INDEX response_targets_start ON response_targets (conversation_id, kind, started_at);
CREATE INDEX response_targets_warn ON response_targets (state, warn_at);
