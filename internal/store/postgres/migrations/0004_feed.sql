-- Version 4: the federation change feed. A delete tombstone keeps the
-- inputs of the access decision about the version it removed (its type,
-- submitting organisation, strictest TLP and named recipients), so that the
-- feed sends it only to peers that could read that version. Add records
-- need none: the feed reads them from the version itself. Records written
-- before this version (and imported ones) keep the defaults: TLP 6 (a
-- marking the server cannot resolve) and no submitter, which no peer may
-- read, so an old tombstone is never sent to anyone who could not have seen
-- the version.
ALTER TABLE changes ADD COLUMN type text NOT NULL DEFAULT '';
ALTER TABLE changes ADD COLUMN submitter text NOT NULL DEFAULT '';
ALTER TABLE changes ADD COLUMN tlp integer NOT NULL DEFAULT 6;
ALTER TABLE changes ADD COLUMN recipients text NOT NULL DEFAULT '[]';

-- Retention prunes the change log by time.
CREATE INDEX changes_at ON changes (at);
