-- Version 14: the console's counts kept as aggregates (issue 17: every
-- console page under a second on 1,000,000 objects). console_counts holds
-- how many latest versions of a collection's objects share what the
-- access decision reads (type, TLP, submitter, recipients);
-- console_sighting_days the sightings' per UTC day of their addition (the
-- dashboard's plot; other objects' writes do not pay for a day count). The dashboard reads a few
-- hundred rows and decides access once per row, instead of scanning the
-- objects.
--
-- Statement triggers with transition tables keep both in the transaction
-- that inserts, supersedes, deletes or changes objects, whatever path
-- writes them: one aggregated upsert per statement, not one per row. The
-- writers of a collection hold its lock, so they do not contend on these
-- rows beyond what they already wait for. A row whose count falls to
-- zero stays (readers skip it).
--
-- Written to run again on a database that has it (tests roll schemas back
-- by their records): the backfill recomputes both tables from the objects.
CREATE TABLE IF NOT EXISTS console_counts (
    cid        bigint NOT NULL,
    type       text COLLATE "C" NOT NULL,
    tlp        integer NOT NULL,
    submitter  text NOT NULL,
    recipients text NOT NULL,
    n          bigint NOT NULL,
    PRIMARY KEY (cid, type, tlp, submitter, recipients)
);

CREATE TABLE IF NOT EXISTS console_sighting_days (
    cid        bigint NOT NULL,
    -- date_added (microseconds since the epoch) / 86,400,000,000
    day        bigint NOT NULL,
    tlp        integer NOT NULL,
    submitter  text NOT NULL,
    recipients text NOT NULL,
    n          bigint NOT NULL,
    PRIMARY KEY (cid, day, tlp, submitter, recipients)
);

-- The functions add the net change of a statement: +1 per latest row of
-- new_rows, -1 per latest row of old_rows. Rows whose change nets to zero
-- (an UPDATE that left latest and the access properties alone) are not
-- written.
CREATE OR REPLACE FUNCTION console_counts_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO console_counts AS c (cid, type, tlp, submitter, recipients, n)
    SELECT cid, type, tlp, submitter, recipients, COUNT(*) FROM new_rows WHERE latest
    GROUP BY cid, type, tlp, submitter, recipients
    ON CONFLICT (cid, type, tlp, submitter, recipients) DO UPDATE SET n = c.n + EXCLUDED.n;
    INSERT INTO console_sighting_days AS c (cid, day, tlp, submitter, recipients, n)
    SELECT cid, date_added / 86400000000, tlp, submitter, recipients, COUNT(*) FROM new_rows WHERE latest AND type = 'sighting'
    GROUP BY cid, date_added / 86400000000, tlp, submitter, recipients
    ON CONFLICT (cid, day, tlp, submitter, recipients) DO UPDATE SET n = c.n + EXCLUDED.n;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION console_counts_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE console_counts c SET n = c.n - d.n
    FROM (SELECT cid, type, tlp, submitter, recipients, COUNT(*) AS n FROM old_rows WHERE latest
          GROUP BY cid, type, tlp, submitter, recipients) d
    WHERE c.cid = d.cid AND c.type = d.type AND c.tlp = d.tlp AND c.submitter = d.submitter AND c.recipients = d.recipients;
    UPDATE console_sighting_days c SET n = c.n - d.n
    FROM (SELECT cid, date_added / 86400000000 AS day, tlp, submitter, recipients, COUNT(*) AS n FROM old_rows WHERE latest AND type = 'sighting'
          GROUP BY cid, date_added / 86400000000, tlp, submitter, recipients) d
    WHERE c.cid = d.cid AND c.day = d.day AND c.tlp = d.tlp AND c.submitter = d.submitter AND c.recipients = d.recipients;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION console_counts_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO console_counts AS c (cid, type, tlp, submitter, recipients, n)
    SELECT cid, type, tlp, submitter, recipients, SUM(d) FROM (
        SELECT cid, type, tlp, submitter, recipients, 1 AS d FROM new_rows WHERE latest
        UNION ALL
        SELECT cid, type, tlp, submitter, recipients, -1 AS d FROM old_rows WHERE latest) x
    GROUP BY cid, type, tlp, submitter, recipients HAVING SUM(d) <> 0
    ON CONFLICT (cid, type, tlp, submitter, recipients) DO UPDATE SET n = c.n + EXCLUDED.n;
    INSERT INTO console_sighting_days AS c (cid, day, tlp, submitter, recipients, n)
    SELECT cid, day, tlp, submitter, recipients, SUM(d) FROM (
        SELECT cid, date_added / 86400000000 AS day, tlp, submitter, recipients, 1 AS d FROM new_rows WHERE latest AND type = 'sighting'
        UNION ALL
        SELECT cid, date_added / 86400000000 AS day, tlp, submitter, recipients, -1 AS d FROM old_rows WHERE latest AND type = 'sighting') x
    GROUP BY cid, day, tlp, submitter, recipients HAVING SUM(d) <> 0
    ON CONFLICT (cid, day, tlp, submitter, recipients) DO UPDATE SET n = c.n + EXCLUDED.n;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS console_counts_insert ON objects;
CREATE TRIGGER console_counts_insert AFTER INSERT ON objects
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION console_counts_insert();
DROP TRIGGER IF EXISTS console_counts_delete ON objects;
CREATE TRIGGER console_counts_delete AFTER DELETE ON objects
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION console_counts_delete();
DROP TRIGGER IF EXISTS console_counts_update ON objects;
CREATE TRIGGER console_counts_update AFTER UPDATE ON objects
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION console_counts_update();

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
