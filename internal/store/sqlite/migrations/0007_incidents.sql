-- Version 7: incident coordination (issue 15). The incident objects are
-- STIX objects in collections; these tables keep, beside them, each
-- incident's regime and lifecycle, the stages met, the history of every
-- step, the deadline alerts sent, and the durable notification queue
-- (seq keeps notifications made at the same moment in the order made).

CREATE TABLE incidents (
    id          TEXT PRIMARY KEY,
    collection  TEXT NOT NULL,
    regime      TEXT NOT NULL,
    regime_def  TEXT NOT NULL,
    reporter    TEXT NOT NULL,
    cert        TEXT NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    state       TEXT NOT NULL,
    aware_at    INTEGER NOT NULL,
    reported_at INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX incidents_updated ON incidents (updated_at);

CREATE TABLE incident_stages (
    incident     TEXT NOT NULL,
    stage        TEXT NOT NULL,
    met_at       INTEGER NOT NULL,
    username     TEXT NOT NULL DEFAULT '',
    organisation TEXT NOT NULL DEFAULT '',
    ref          TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (incident, stage)
) WITHOUT ROWID;

CREATE TABLE incident_events (
    seq          INTEGER PRIMARY KEY,
    incident     TEXT NOT NULL,
    at           INTEGER NOT NULL,
    username     TEXT NOT NULL DEFAULT '',
    organisation TEXT NOT NULL DEFAULT '',
    kind         TEXT NOT NULL,
    from_state   TEXT NOT NULL DEFAULT '',
    to_state     TEXT NOT NULL DEFAULT '',
    stage        TEXT NOT NULL DEFAULT '',
    note         TEXT NOT NULL DEFAULT '',
    ref          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX incident_events_incident ON incident_events (incident, seq);

CREATE TABLE incident_alerts (
    incident TEXT NOT NULL,
    stage    TEXT NOT NULL,
    kind     TEXT NOT NULL,
    at       INTEGER NOT NULL,
    PRIMARY KEY (incident, stage, kind)
) WITHOUT ROWID;

CREATE TABLE notify_deliveries (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    channel      TEXT NOT NULL,
    target       TEXT NOT NULL,
    event        TEXT NOT NULL,
    subject      TEXT NOT NULL DEFAULT '',
    body         BLOB NOT NULL,
    organisation TEXT NOT NULL DEFAULT '',
    state        TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    leased_until INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT NOT NULL DEFAULT '',
    created      INTEGER NOT NULL,
    delivered    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX notify_deliveries_due ON notify_deliveries (state, next_attempt);
CREATE INDEX notify_deliveries_created ON notify_deliveries (created);
