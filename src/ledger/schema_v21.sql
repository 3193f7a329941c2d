-- Schema version 21: nothing to change on SQLite. On PostgreSQL this version adds the trigger that
-- tells every server of a change to the till tokens (src/server/pg_schema_v21.sql); one SQLite
-- file has no other server to tell, so each request there reads its token from the file.
SELECT 1;
