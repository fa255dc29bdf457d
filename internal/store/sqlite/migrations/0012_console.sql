-- Version 12: web console sessions and each user's console language
-- (issue 17). Only the SHA-256 of a session secret is stored. Written to
-- run again on a database that has it (the owners backfill test rolls the
-- records of later migrations back).
CREATE TABLE IF NOT EXISTS console_sessions (
    hash      TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    csrf      TEXT NOT NULL,
    -- A digest of the user's stored password hash at sign-in: a password
    -- change ends the sessions opened with the old password.
    credential TEXT NOT NULL DEFAULT '',
    created   BIGINT NOT NULL,
    expires   BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS console_sessions_user ON console_sessions (user_name);
CREATE INDEX IF NOT EXISTS console_sessions_expires ON console_sessions (expires);

CREATE TABLE IF NOT EXISTS console_prefs (
    user_name TEXT PRIMARY KEY,
    lang      TEXT NOT NULL
);

-- The dashboard counts the latest versions of a collection's objects by
-- what the access decision reads: this index holds exactly those columns,
-- so the count reads the index, never the objects' bodies.
CREATE INDEX IF NOT EXISTS objects_console_counts ON objects (cid, type, tlp, submitter, recipients) WHERE latest;
