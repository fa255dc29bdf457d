-- No schema change on this branch. Version 16 belongs to the work that moves
-- SQLite's search index to its own file; this stand-in only keeps the
-- versions without gaps here and gives way to that migration at the merge.
SELECT 1;
