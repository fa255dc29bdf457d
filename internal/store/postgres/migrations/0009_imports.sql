-- Version 9: imports (issue 16). The same model as the embedded store's
-- version 9.

CREATE TABLE import_feeds (
    name          text PRIMARY KEY,
    url           text NOT NULL,
    format        text NOT NULL,
    collection    text NOT NULL,
    username      text NOT NULL,
    organisation  text NOT NULL,
    options       text NOT NULL DEFAULT '{}',
    interval_ms   bigint NOT NULL,
    etag          text NOT NULL DEFAULT '',
    last_modified text NOT NULL DEFAULT '',
    last_run      bigint NOT NULL DEFAULT 0,
    next_run      bigint NOT NULL DEFAULT 0,
    last_report   text NOT NULL DEFAULT '',
    created       bigint NOT NULL
);

CREATE TABLE warning_lists (
    name        text PRIMARY KEY,
    kind        text NOT NULL,
    description text NOT NULL DEFAULT '',
    entries     text NOT NULL,
    updated     bigint NOT NULL
);

CREATE TABLE inactive_objects (
    object_id  text COLLATE "C" PRIMARY KEY,
    collection text NOT NULL,
    list       text NOT NULL,
    value      text NOT NULL,
    reason     text NOT NULL,
    at         bigint NOT NULL
);
CREATE INDEX inactive_objects_collection ON inactive_objects (collection);
