-- 0015: indexes for the KPIs (issue 24, storage/kpi.py), so that a month of 100,000
-- conversations is read in well under a second.  Each covers its statement's columns, so the
-- tables themselves are not read.
-- Messages written in a period: counts by direction, origin and state.
CREATE INDEX messages_kpi_time ON messages (created_at, conversation_id, direction, origin,
                                            state, author_slack_user);
-- The waits: a conversation's counted messages in order, without reading the table.
CREATE INDEX messages_kpi_waits ON messages (conversation_id, id, direction, origin, created_at,
                                             author_slack_user);
-- Conversations opened in a period, and those active in it.
CREATE INDEX conversations_kpi_created ON conversations (created_at, connector, slack_channel,
                                                         assignee);
CREATE INDEX conversations_kpi_updated ON conversations (updated_at, created_at, id);
-- Status changes in a period (closes, reopenings).
CREATE INDEX conversation_changes_kpi ON conversation_changes (kind, created_at,
                                                               conversation_id, old_value,
                                                               new_value);
-- Targets met or missed, surveys answered, in a period.
CREATE INDEX response_targets_kpi_met ON response_targets (state, met_at);
CREATE INDEX response_targets_kpi_missed ON response_targets (state, missed_at);
CREATE INDEX surveys_kpi ON surveys (state, answered_at, kind);
