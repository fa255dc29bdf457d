-- No schema change. Version 6 was set aside for federation work that turned out not to
-- need one; the migration runner applies versions without gaps.
SELECT 1;
