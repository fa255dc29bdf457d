-- Search (issue 17): a full-text index over the name, description, labels
-- and pattern (or value) of every stored object version, and the embedded
-- references between objects (every *_ref and *_refs but markings), for
-- pivots and for "which sightings and reports mention this".
--
-- Both are kept by triggers on objects, in the transaction that writes or
-- deletes the object, so the indexes hold exactly what is committed
-- whatever path writes (TAXII add, import, federation, retention,
-- collection deletes) and nothing accepted is missing after a restart.
-- The migration can run again on a database that has it (tests roll
-- schemas back by their records). Rows are keyed by objects.rid; queries join objects for the latest flag,
-- the collection and the access metadata.

CREATE VIRTUAL TABLE IF NOT EXISTS search_text USING fts5(
    name, description, labels, pattern,
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TABLE IF NOT EXISTS search_refs (
    target TEXT NOT NULL,
    rid    INTEGER NOT NULL,
    PRIMARY KEY (target, rid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS search_refs_rid ON search_refs (rid);

-- The body is a BLOB: SQLite reads a BLOB as JSONB, so it is cast to TEXT.
-- json_tree's path of an array element is its array's, quoted ($."x_refs")
-- by recent SQLite versions.
CREATE TRIGGER IF NOT EXISTS search_add AFTER INSERT ON objects BEGIN
    INSERT INTO search_text (rowid, name, description, labels, pattern)
    SELECT NEW.rid, json_extract(j, '$.name'), json_extract(j, '$.description'),
        (SELECT group_concat(value, ' ') FROM json_each(j, '$.labels') WHERE type = 'text'),
        coalesce(json_extract(j, '$.pattern'), json_extract(j, '$.value'))
    FROM (SELECT CAST(NEW.body AS TEXT) AS j) WHERE json_valid(j);
    INSERT OR IGNORE INTO search_refs (target, rid)
    SELECT DISTINCT t.value, NEW.rid
    FROM (SELECT CASE WHEN json_valid(CAST(NEW.body AS TEXT)) THEN CAST(NEW.body AS TEXT) ELSE '{}' END AS j) s, json_tree(s.j) t
    WHERE t.type = 'text' AND t.value LIKE '%--%'
      AND ((t.key LIKE '%\_ref' ESCAPE '\' AND t.key <> 'marking_ref')
        OR ((t.path LIKE '%\_refs' ESCAPE '\' OR t.path LIKE '%\_refs"' ESCAPE '\') AND t.path NOT LIKE '%object\_marking\_refs%' ESCAPE '\'));
END;

CREATE TRIGGER IF NOT EXISTS search_delete AFTER DELETE ON objects BEGIN
    DELETE FROM search_text WHERE rowid = OLD.rid;
    DELETE FROM search_refs WHERE rid = OLD.rid;
END;

-- Objects stored before this migration.
INSERT INTO search_text (rowid, name, description, labels, pattern)
SELECT rid, json_extract(j, '$.name'), json_extract(j, '$.description'),
    (SELECT group_concat(value, ' ') FROM json_each(j, '$.labels') WHERE type = 'text'),
    coalesce(json_extract(j, '$.pattern'), json_extract(j, '$.value'))
FROM (SELECT rid, CAST(body AS TEXT) AS j FROM objects) WHERE json_valid(j) AND rid NOT IN (SELECT rowid FROM search_text);

INSERT OR IGNORE INTO search_refs (target, rid)
SELECT DISTINCT t.value, s.rid
FROM (SELECT rid, CASE WHEN json_valid(CAST(body AS TEXT)) THEN CAST(body AS TEXT) ELSE '{}' END AS j FROM objects) s, json_tree(s.j) t
WHERE t.type = 'text' AND t.value LIKE '%--%'
  AND ((t.key LIKE '%\_ref' ESCAPE '\' AND t.key <> 'marking_ref')
    OR ((t.path LIKE '%\_refs' ESCAPE '\' OR t.path LIKE '%\_refs"' ESCAPE '\') AND t.path NOT LIKE '%object\_marking\_refs%' ESCAPE '\'));
