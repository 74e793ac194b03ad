-- 0018 (assigned 0017, the next free number on main at merge).  The KPIs' targets
-- statements (storage/kpi.py `_targets`) read only an index: the
-- indexes of 0015 on (state, met_at) and (state, missed_at) made every met or missed target
-- of the period a table lookup for its kind, team and assignee (a sixth of the KPIs' time
-- over a month of 100,000 conversations on SQLite).
DROP INDEX response_targets_kpi_met;
DROP INDEX response_targets_kpi_missed;
CREATE INDEX response_targets_kpi_met ON response_targets (state, met_at, kind, team, assignee,
                                                           conversation_id);
CREATE INDEX response_targets_kpi_missed ON response_targets (state, missed_at, kind, team,
                                                              assignee, conversation_id);
-- Messages written in a period, by channel: the message's connector too.
DROP INDEX messages_kpi_time;
CREATE INDEX messages_kpi_time ON messages (created_at, conversation_id, direction, origin,
                                            state, author_slack_user, connector);
