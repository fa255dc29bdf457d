-- Version 9: imports (issue 16): scheduled feeds, warning lists, and the
-- objects an import kept but flagged inactive because a value is on a
-- warning list.

-- A feed pulled on a schedule: where from, in what format, into which
-- collection as whom, and what the last run saw (validators and report).
CREATE TABLE import_feeds (
    name          TEXT PRIMARY KEY,
    url           TEXT NOT NULL,
    format        TEXT NOT NULL,
    collection    TEXT NOT NULL,
    username      TEXT NOT NULL,
    organisation  TEXT NOT NULL,
    options       TEXT NOT NULL DEFAULT '{}',
    interval_ms   INTEGER NOT NULL,
    etag          TEXT NOT NULL DEFAULT '',
    last_modified TEXT NOT NULL DEFAULT '',
    last_run      INTEGER NOT NULL DEFAULT 0,
    next_run      INTEGER NOT NULL DEFAULT 0,
    last_report   TEXT NOT NULL DEFAULT '',
    created       INTEGER NOT NULL
) WITHOUT ROWID;

-- A warning list kept in the store (the built-in ones are in the binary).
CREATE TABLE warning_lists (
    name        TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    entries     TEXT NOT NULL,
    updated     INTEGER NOT NULL
) WITHOUT ROWID;

-- Objects that must not be active indicators, with the reason.
CREATE TABLE inactive_objects (
    object_id  TEXT PRIMARY KEY,
    collection TEXT NOT NULL,
    list       TEXT NOT NULL,
    value      TEXT NOT NULL,
    reason     TEXT NOT NULL,
    at         INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX inactive_objects_collection ON inactive_objects (collection);
