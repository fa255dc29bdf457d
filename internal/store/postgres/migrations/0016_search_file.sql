-- Version 16: no schema change on PostgreSQL. SQLite's version 16 moves
-- its search index to a file of its own, written after the commits;
-- PostgreSQL's stays in the database, kept by its triggers.
SELECT 1;
