-- Version 13: the write path (issues 13 and 14). The search indexes of
-- version 11 are no longer kept by the search_add trigger, which parsed
-- every body in SQL five times over in the writer's transaction: the store
-- writes the same rows itself, computed in one parse, in the transaction
-- that inserts the object (sqlite/search.go). The delete trigger stays.
DROP TRIGGER IF EXISTS search_add;
