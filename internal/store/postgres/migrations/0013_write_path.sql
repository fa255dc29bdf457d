-- Version 13: no schema change on PostgreSQL. SQLite's version 13 moves
-- the search indexing of new objects from a trigger into the store; here
-- the trigger of version 11 stays, as PostgreSQL's jsonb functions are
-- not the writer's bottleneck.
SELECT 1;
