-- Version 4: federation peers and their links (issue 14), with each link's
-- status, the objects it refused, where mirrored objects came from, and a
-- lease so that one process runs a link at a time.

-- A remote server mapped to a local organisation. secret holds the sealed
-- credentials (password, token, client key): never plaintext.
CREATE TABLE peers (
    name         TEXT PRIMARY KEY,
    url          TEXT NOT NULL,
    organisation TEXT NOT NULL,
    username     TEXT NOT NULL DEFAULT '',
    secret       BLOB NOT NULL,
    ca_pem       TEXT NOT NULL DEFAULT '',
    cert_pem     TEXT NOT NULL DEFAULT '',
    created      INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE peer_links (
    id                TEXT PRIMARY KEY,
    peer              TEXT NOT NULL REFERENCES peers (name) ON DELETE CASCADE,
    direction         TEXT NOT NULL,
    local_collection  TEXT NOT NULL,
    remote_collection TEXT NOT NULL,
    interval_ms       INTEGER NOT NULL,
    created           INTEGER NOT NULL,
    last_success      INTEGER NOT NULL DEFAULT 0,
    last_error        TEXT NOT NULL DEFAULT '',
    last_error_at     INTEGER NOT NULL DEFAULT 0,
    lag_objects       INTEGER NOT NULL DEFAULT 0,
    lag_ms            INTEGER NOT NULL DEFAULT 0,
    synced            INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX peer_links_peer ON peer_links (peer);

-- Objects a link refused (validation, ownership, conflicts), with reasons.
CREATE TABLE peer_rejections (
    seq       INTEGER PRIMARY KEY,
    link      TEXT NOT NULL,
    peer      TEXT NOT NULL,
    kind      TEXT NOT NULL,
    object_id TEXT NOT NULL,
    version   TEXT NOT NULL,
    reason    TEXT NOT NULL,
    at        INTEGER NOT NULL
);
CREATE INDEX peer_rejections_peer ON peer_rejections (peer, seq);

-- Which link brought each mirrored version, and when.
CREATE TABLE object_provenance (
    id       TEXT NOT NULL,
    version  TEXT NOT NULL,
    link     TEXT NOT NULL,
    peer     TEXT NOT NULL,
    received INTEGER NOT NULL,
    PRIMARY KEY (id, version, link)
) WITHOUT ROWID;

CREATE TABLE peer_leases (
    link    TEXT PRIMARY KEY,
    holder  TEXT NOT NULL,
    expires INTEGER NOT NULL
) WITHOUT ROWID;
