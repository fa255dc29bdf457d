-- Version 15: the write path (issues 13 and 14), continued.
--
-- The console's counts are added by the store per batch of inserted
-- objects (sqlite/consolecounts.go), in the transaction that inserts them,
-- instead of by a trigger program per object row. The triggers that follow
-- supersedes, deletes and changes stay.
DROP TRIGGER IF EXISTS console_counts_add;

-- FTS5 merges a level's segments once 8 of them are there instead of 4:
-- every indexed word is rewritten about half as often as the index grows,
-- for a few more segments to read per query. A setting of the table,
-- kept in its config shadow table.
INSERT INTO search_text (search_text, rank) VALUES ('automerge', 8);
