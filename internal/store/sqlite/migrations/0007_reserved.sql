-- Placeholder on branch w/assist only: version 7 belongs to another branch's
-- migration. The lead drops this file when merging (versions run without gaps).
SELECT 1;
