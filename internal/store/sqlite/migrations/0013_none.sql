-- No schema change on this branch. Version 13 is the write path's
-- (w/storeperf, 0013_write_path.sql), which replaces this file when both
-- are merged; the migration runner applies versions without gaps.
SELECT 1;
