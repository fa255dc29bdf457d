-- Placeholder on branch w/incident only: version 6 belongs to another branch's
-- migration. The lead drops this file when merging (versions run without gaps).
SELECT 1;
