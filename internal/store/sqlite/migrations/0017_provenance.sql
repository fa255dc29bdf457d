-- Version 17: the provenance of mirrored versions without a row per
-- version at a random place of an id-keyed index (issue 14).
--
-- object_provenance (migration 5) had a row per mirrored version keyed by
-- (id, version, link): each insert dirtied a page of its own, a quarter of
-- a federation page's commit. Now one row per delivery (a link's call of
-- RecordProvenance: link, peer, time) and one row per run of the
-- delivery's versions that the transaction added one after the other to a
-- collection, by their date_added (strictly increasing per collection and
-- never reused, and kept by migrate-store): both grow at their end. A
-- version is found from its objects row: the range of its collection that
-- covers its date_added. Provenance of versions that the transaction did
-- not add itself, and of deleted versions (trigger below), is kept by id
-- in provenance_versions. Readers keep the first delivery of each
-- (id, version, link), as object_provenance's key did.
CREATE TABLE IF NOT EXISTS provenance_deliveries (
    delivery INTEGER PRIMARY KEY,
    link     TEXT NOT NULL,
    peer     TEXT NOT NULL,
    received INTEGER NOT NULL
);

-- Every objects row of the collection (public id) whose date_added is in
-- [first_added, last_added] came with delivery.
CREATE TABLE IF NOT EXISTS provenance_ranges (
    collection  TEXT NOT NULL,
    last_added  INTEGER NOT NULL,
    first_added INTEGER NOT NULL,
    delivery    INTEGER NOT NULL,
    PRIMARY KEY (collection, last_added)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS provenance_versions (
    id       TEXT NOT NULL,
    version  TEXT NOT NULL,
    delivery INTEGER NOT NULL,
    PRIMARY KEY (id, version, delivery)
) WITHOUT ROWID;

-- A deleted version keeps its provenance, by id.
CREATE TRIGGER IF NOT EXISTS provenance_keep AFTER DELETE ON objects BEGIN
    INSERT OR IGNORE INTO provenance_versions (id, version, delivery)
    SELECT OLD.id, OLD.version_raw, r.delivery
    FROM collections c JOIN provenance_ranges r ON r.collection = c.id
    WHERE c.cid = OLD.cid AND r.first_added <= OLD.date_added
      AND r.last_added = (SELECT MIN(m.last_added) FROM provenance_ranges m WHERE m.collection = c.id AND m.last_added >= OLD.date_added);
END;

-- (Version 5's table, empty, when this version runs again.)
CREATE TABLE IF NOT EXISTS object_provenance (
    id       TEXT NOT NULL,
    version  TEXT NOT NULL,
    link     TEXT NOT NULL,
    peer     TEXT NOT NULL,
    received INTEGER NOT NULL,
    PRIMARY KEY (id, version, link)
) WITHOUT ROWID;
-- Rows of migration 5: a delivery per (link, peer, received), in time
-- order. Their keys were unique per (id, version, link), so the order
-- among them decides nothing.
INSERT INTO provenance_deliveries (link, peer, received)
SELECT link, peer, received FROM object_provenance GROUP BY link, peer, received ORDER BY received, link, peer;
INSERT OR IGNORE INTO provenance_versions (id, version, delivery)
SELECT p.id, p.version, d.delivery FROM object_provenance p
JOIN provenance_deliveries d ON d.link = p.link AND d.peer = p.peer AND d.received = p.received;
DROP TABLE object_provenance;
