-- Version 3: object ownership (STIX 2.1 §3.6), writer cursors, and the
-- index that resolves marking definitions.

-- One owner per object id on the whole server: the organisation of its
-- first stored version. The primary key settles concurrent first versions.
CREATE TABLE owners (
    id    TEXT PRIMARY KEY,
    owner TEXT NOT NULL
) WITHOUT ROWID;

-- Existing objects: the submitter of the earliest stored version (by
-- date_added, in any collection) that names one. Versions stored before
-- submitters were recorded ('') leave the id unowned.
INSERT INTO owners (id, owner)
SELECT id, submitter FROM (
    SELECT id, submitter, row_number() OVER (PARTITION BY id ORDER BY date_added, rid) AS n
    FROM objects WHERE submitter <> '')
WHERE n = 1;

-- Progress of transactional writers (Updater), committed with their
-- objects: keys are namespaced by the caller.
CREATE TABLE cursors (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;

-- Marking definitions by id in any collection (store.Markings).
CREATE INDEX objects_markings ON objects (id) WHERE type = 'marking-definition';

-- Retention prunes statuses by request time.
CREATE INDEX statuses_request_ts ON statuses (request_ts);
