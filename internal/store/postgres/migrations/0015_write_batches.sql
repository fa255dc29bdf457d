-- Version 15: no schema change on PostgreSQL. SQLite's version 15 drops
-- the row trigger that added to the console's counts (the store adds them
-- per batch there) and tunes FTS5 merges; PostgreSQL's console triggers
-- are per statement already, and its search index is not FTS5.
SELECT 1;
