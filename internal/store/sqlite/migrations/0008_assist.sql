-- Version 8: cross-border assistance (issue 15). Requests and their steps
-- are STIX notes in collections; these tables keep what is not STIX: the
-- durable queue of deliveries to points of contact (kept and retried until
-- the contact's server takes them, never dropped) and the reachability
-- challenges sent to points of contact with their answers.

CREATE TABLE assist_deliveries (
    seq               INTEGER PRIMARY KEY,
    label             TEXT NOT NULL,
    collection        TEXT NOT NULL,
    objects           TEXT NOT NULL,
    route             TEXT NOT NULL,
    remote_collection TEXT NOT NULL DEFAULT '',
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt      INTEGER NOT NULL,
    last_error        TEXT NOT NULL DEFAULT '',
    delivered         INTEGER NOT NULL DEFAULT 0,
    created           INTEGER NOT NULL
);
CREATE INDEX assist_deliveries_due ON assist_deliveries (delivered, next_attempt);
CREATE INDEX assist_deliveries_label ON assist_deliveries (label, seq);

CREATE TABLE poc_challenges (
    id           TEXT PRIMARY KEY,
    contact      TEXT NOT NULL,
    channel      TEXT NOT NULL,
    sent         INTEGER NOT NULL,
    send_error   TEXT NOT NULL DEFAULT '',
    answered     INTEGER NOT NULL DEFAULT 0,
    answered_via TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE INDEX poc_challenges_contact ON poc_challenges (contact, sent);
