-- Placeholder until the assistance migration (version 8) is merged:
-- migrations run without gaps.
SELECT 1;
