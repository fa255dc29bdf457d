-- Version 14: the console's counts kept as aggregates (issue 17: every
-- console page under a second on 1,000,000 objects). console_counts holds
-- how many latest versions of a collection's objects share what the
-- access decision reads (type, TLP, submitter, recipients);
-- console_sighting_days the sightings' per UTC day of their addition (the
-- dashboard's plot; other objects' writes do not pay for a day count). The dashboard reads a few
-- hundred rows and decides access once per row, instead of scanning the
-- objects.
--
-- Triggers keep both in the transaction that inserts, supersedes, deletes
-- or changes an object, whatever path writes it. A row whose count falls
-- to zero stays (readers skip it): deleting it would cost every write a
-- second statement for a table that stays small anyway.
--
-- Written to run again on a database that has it (tests roll schemas back
-- by their records): the backfill recomputes both tables from the objects.
CREATE TABLE IF NOT EXISTS console_counts (
    cid        INTEGER NOT NULL,
    type       TEXT NOT NULL,
    tlp        INTEGER NOT NULL,
    submitter  TEXT NOT NULL,
    recipients TEXT NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (cid, type, tlp, submitter, recipients)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS console_sighting_days (
    cid        INTEGER NOT NULL,
    -- date_added (microseconds since the epoch) / 86,400,000,000
    day        INTEGER NOT NULL,
    tlp        INTEGER NOT NULL,
    submitter  TEXT NOT NULL,
    recipients TEXT NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (cid, day, tlp, submitter, recipients)
) WITHOUT ROWID;

CREATE TRIGGER IF NOT EXISTS console_counts_add AFTER INSERT ON objects WHEN NEW.latest BEGIN
    INSERT INTO console_counts (cid, type, tlp, submitter, recipients, n)
    VALUES (NEW.cid, NEW.type, NEW.tlp, NEW.submitter, NEW.recipients, 1)
    ON CONFLICT (cid, type, tlp, submitter, recipients) DO UPDATE SET n = n + 1;
    INSERT INTO console_sighting_days (cid, day, tlp, submitter, recipients, n)
    SELECT NEW.cid, NEW.date_added / 86400000000, NEW.tlp, NEW.submitter, NEW.recipients, 1 WHERE NEW.type = 'sighting'
    ON CONFLICT (cid, day, tlp, submitter, recipients) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER IF NOT EXISTS console_counts_delete AFTER DELETE ON objects WHEN OLD.latest BEGIN
    UPDATE console_counts SET n = n - 1
    WHERE cid = OLD.cid AND type = OLD.type AND tlp = OLD.tlp AND submitter = OLD.submitter AND recipients = OLD.recipients;
    UPDATE console_sighting_days SET n = n - 1
    WHERE OLD.type = 'sighting' AND cid = OLD.cid AND day = OLD.date_added / 86400000000 AND tlp = OLD.tlp
      AND submitter = OLD.submitter AND recipients = OLD.recipients;
END;

-- A version superseded (latest cleared), made latest again (its newer
-- version deleted), or a latest version's access properties changed.
CREATE TRIGGER IF NOT EXISTS console_counts_update
AFTER UPDATE OF latest, cid, type, tlp, submitter, recipients, date_added ON objects
WHEN (OLD.latest OR NEW.latest) AND (OLD.latest IS NOT NEW.latest OR OLD.cid IS NOT NEW.cid OR OLD.type IS NOT NEW.type
    OR OLD.tlp IS NOT NEW.tlp OR OLD.submitter IS NOT NEW.submitter OR OLD.recipients IS NOT NEW.recipients
    OR OLD.date_added / 86400000000 IS NOT NEW.date_added / 86400000000) BEGIN
    UPDATE console_counts SET n = n - 1
    WHERE OLD.latest AND cid = OLD.cid AND type = OLD.type AND tlp = OLD.tlp AND submitter = OLD.submitter AND recipients = OLD.recipients;
    UPDATE console_sighting_days SET n = n - 1
    WHERE OLD.latest AND OLD.type = 'sighting' AND cid = OLD.cid AND day = OLD.date_added / 86400000000 AND tlp = OLD.tlp
      AND submitter = OLD.submitter AND recipients = OLD.recipients;
    INSERT INTO console_counts (cid, type, tlp, submitter, recipients, n)
    SELECT NEW.cid, NEW.type, NEW.tlp, NEW.submitter, NEW.recipients, 1 WHERE NEW.latest
    ON CONFLICT (cid, type, tlp, submitter, recipients) DO UPDATE SET n = n + 1;
    INSERT INTO console_sighting_days (cid, day, tlp, submitter, recipients, n)
    SELECT NEW.cid, NEW.date_added / 86400000000, NEW.tlp, NEW.submitter, NEW.recipients, 1 WHERE NEW.latest AND NEW.type = 'sighting'
    ON CONFLICT (cid, day, tlp, submitter, recipients) DO UPDATE SET n = n + 1;
END;

-- Objects stored before this migration (or since it last ran).
DELETE FROM console_counts;
INSERT INTO console_counts (cid, type, tlp, submitter, recipients, n)
SELECT cid, type, tlp, submitter, recipients, COUNT(*) FROM objects WHERE latest
GROUP BY cid, type, tlp, submitter, recipients;
DELETE FROM console_sighting_days;
INSERT INTO console_sighting_days (cid, day, tlp, submitter, recipients, n)
SELECT cid, date_added / 86400000000, tlp, submitter, recipients, COUNT(*) FROM objects WHERE latest AND type = 'sighting'
GROUP BY cid, date_added / 86400000000, tlp, submitter, recipients;

-- The dashboard no longer scans the objects: the covering index of
-- version 12 would only cost every write.
DROP INDEX IF EXISTS objects_console_counts;
