-- Mitra's embedded schema, version 1.
-- Times are integers: microseconds since the Unix epoch (TAXII 2.1 timestamps
-- have exactly microsecond precision). Object versions are stix.SortKey
-- strings, whose byte order is time order at nanosecond precision.

CREATE TABLE organisations (
    id         TEXT PRIMARY KEY,           -- identity--UUID
    name       TEXT NOT NULL UNIQUE,
    created    INTEGER NOT NULL,
    is_default INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE users (
    name          TEXT PRIMARY KEY,
    organisation  TEXT NOT NULL REFERENCES organisations(id),
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created       INTEGER NOT NULL
);

-- cid is the compact key object rows carry; id is the public UUID.
-- last_added and last_seq are the high-water marks that make date_added and
-- the change-log sequence strictly increasing per collection: they are read
-- and advanced inside the (serialised) write transaction.
CREATE TABLE collections (
    cid         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    title       TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    alias       TEXT UNIQUE,
    created     INTEGER NOT NULL,
    last_added  INTEGER NOT NULL DEFAULT 0,
    last_seq    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE grants (
    cid       INTEGER NOT NULL REFERENCES collections(cid) ON DELETE CASCADE,
    user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    can_read  INTEGER NOT NULL,
    can_write INTEGER NOT NULL,
    PRIMARY KEY (cid, user_name)
) WITHOUT ROWID;

-- One row per object version per collection; body is the object exactly as
-- received. latest marks the row TAXII serves by default for its id: the
-- last version of the latest spec version (TAXII 2.1 §3.4.1). It is kept up
-- to date on every insert and delete so that default reads need no
-- per-row subquery.
CREATE TABLE objects (
    rid          INTEGER PRIMARY KEY,
    cid          INTEGER NOT NULL,
    date_added   INTEGER NOT NULL,
    id           TEXT NOT NULL,
    type         TEXT NOT NULL,
    spec_version TEXT NOT NULL,
    version      TEXT NOT NULL,
    version_raw  TEXT NOT NULL,
    latest       INTEGER NOT NULL DEFAULT 0,
    body         BLOB NOT NULL
);
CREATE INDEX objects_added ON objects (cid, date_added);
CREATE UNIQUE INDEX objects_version ON objects (cid, id, version);

-- The per-collection change log federation serves to peers. Deletes leave
-- tombstones (op = 'delete'); rows are never updated.
CREATE TABLE changes (
    cid         INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    op          TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    version_raw TEXT NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY (cid, seq)
) WITHOUT ROWID;

CREATE TABLE tokens (
    id        TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    hash      TEXT NOT NULL UNIQUE,
    role      TEXT NOT NULL,
    created   INTEGER NOT NULL,
    expires   INTEGER NOT NULL DEFAULT 0,
    revoked   INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE statuses (
    id            TEXT PRIMARY KEY,
    owner         TEXT NOT NULL,
    collection_id TEXT NOT NULL,
    request_ts    INTEGER NOT NULL,
    complete      INTEGER NOT NULL,
    total         INTEGER NOT NULL,
    successes     BLOB NOT NULL,
    failures      BLOB NOT NULL,
    pendings      BLOB NOT NULL
);
