-- Assigned 0021 (numbered 0017 here, the next free number on main; renumbered at merge).
-- Two indexes that 0015's KPI indexes cover by their leading columns: messages_created
-- (created_at; messages_kpi_time starts with it) and messages_conversation (conversation_id,
-- id; messages_kpi_waits starts with them).  Every customer message wrote both for nothing:
-- about 15 us of CPU per message on SQLite (docs/benchmarks.md, "Cost of issues 20-28").
DROP INDEX IF EXISTS messages_created;
DROP INDEX IF EXISTS messages_conversation;
