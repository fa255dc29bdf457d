-- Version 3: object ownership (STIX 2.1 §3.6), writer cursors, and the
-- index that resolves marking definitions. The same model as the embedded
-- store's version 3.

-- One owner per object id on the whole server: the organisation of its
-- first stored version. The primary key settles concurrent first versions
-- (INSERT ... ON CONFLICT DO NOTHING waits for the other transaction).
CREATE TABLE owners (
    id    text COLLATE "C" PRIMARY KEY,
    owner text NOT NULL
);

-- Existing objects: the submitter of the earliest stored version (by
-- date_added, in any collection) that names one. Versions stored before
-- submitters were recorded ('') leave the id unowned.
INSERT INTO owners (id, owner)
SELECT DISTINCT ON (id) id, submitter FROM objects
WHERE submitter <> ''
ORDER BY id, date_added, rid;

-- Progress of transactional writers (Updater), committed with their
-- objects: keys are namespaced by the caller.
CREATE TABLE cursors (
    key   text PRIMARY KEY,
    value bytea NOT NULL
);

-- Marking definitions by id in any collection (store.Markings).
CREATE INDEX objects_markings ON objects (id) WHERE type = 'marking-definition';

-- Retention prunes statuses by request time.
CREATE INDEX statuses_request_ts ON statuses (request_ts);
