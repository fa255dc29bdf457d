-- Version 16: the search index moves to a file of its own (issue 13, the
-- write path). search_text and search_refs are written by an indexer that
-- follows the commits, in mitra-search.db beside this file, under that
-- file's write lock instead of the writer's (sqlite/searchindex.go). The
-- indexer rebuilds them there from the objects; the store's readers attach
-- that file, where the search SQL finds the tables once they are gone
-- from here.
DROP TRIGGER IF EXISTS search_add;
DROP TRIGGER IF EXISTS search_delete;
DROP TABLE IF EXISTS search_text;
DROP TABLE IF EXISTS search_refs;
