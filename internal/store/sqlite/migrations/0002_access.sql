-- Version 2: organisations, sharing groups, grants to organisations and
-- groups, TLP metadata on objects, and the audit log (the access issue).

ALTER TABLE organisations ADD COLUMN anonymise_sightings INTEGER NOT NULL DEFAULT 0;

CREATE TABLE groups_ (
    id      TEXT PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE,
    created INTEGER NOT NULL
);

CREATE TABLE group_members (
    group_id     TEXT NOT NULL REFERENCES groups_(id) ON DELETE CASCADE,
    organisation TEXT NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, organisation)
) WITHOUT ROWID;

-- Grants to organisations ('org') and groups ('group'); user grants stay in
-- the grants table of version 1.
CREATE TABLE party_grants (
    cid       INTEGER NOT NULL REFERENCES collections(cid) ON DELETE CASCADE,
    kind      TEXT NOT NULL CHECK (kind IN ('org', 'group')),
    subject   TEXT NOT NULL,
    can_read  INTEGER NOT NULL,
    can_write INTEGER NOT NULL,
    PRIMARY KEY (cid, kind, subject)
) WITHOUT ROWID;

-- default_tlp applies to objects without a TLP marking (access.TLP values;
-- 3 = AMBER). recipients: organisations named as recipients of the
-- collection's AMBER+STRICT and RED objects, as a JSON list.
ALTER TABLE collections ADD COLUMN default_tlp INTEGER NOT NULL DEFAULT 3;
ALTER TABLE collections ADD COLUMN recipients TEXT NOT NULL DEFAULT '[]';

-- Who submitted each version (from the authenticated principal, never from
-- the object), its strictest TLP marking (0 = unmarked) and its named
-- recipients (JSON list).
ALTER TABLE objects ADD COLUMN submitter TEXT NOT NULL DEFAULT '';
ALTER TABLE objects ADD COLUMN tlp INTEGER NOT NULL DEFAULT 0;
ALTER TABLE objects ADD COLUMN recipients TEXT NOT NULL DEFAULT '[]';

CREATE TABLE audit (
    seq          INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    principal    TEXT NOT NULL,
    organisation TEXT NOT NULL,
    action       TEXT NOT NULL,
    path         TEXT NOT NULL,
    collection   TEXT NOT NULL DEFAULT '',
    objects      TEXT NOT NULL DEFAULT '[]',
    detail       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_at ON audit (at);
