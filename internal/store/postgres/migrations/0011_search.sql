-- Search (issue 17): a full-text index (tsvector, GIN) over the name,
-- description, labels and pattern (or value) of every stored object
-- version, and the embedded references between objects (every *_ref and
-- *_refs but markings), for pivots and for "which sightings and reports
-- mention this".
--
-- Both are kept by a trigger on objects in the transaction that writes the
-- object, and removed with it (ON DELETE CASCADE), so the indexes hold
-- exactly what is committed whatever path writes (TAXII add, import,
-- federation, retention, collection deletes) and nothing accepted is
-- missing after a restart. The migration can run again on a database
-- that has it (tests roll schemas back by their records). The 'simple' configuration does not stem: the
-- texts are in many languages (English, Indonesian, Russian, ...) and
-- indicator values must match as written.

CREATE TABLE IF NOT EXISTS search_text (
    rid bigint PRIMARY KEY REFERENCES objects (rid) ON DELETE CASCADE,
    doc tsvector NOT NULL
);
CREATE INDEX IF NOT EXISTS search_text_doc ON search_text USING gin (doc);

CREATE TABLE IF NOT EXISTS search_refs (
    target text COLLATE "C" NOT NULL,
    rid    bigint NOT NULL REFERENCES objects (rid) ON DELETE CASCADE,
    PRIMARY KEY (target, rid)
);
CREATE INDEX IF NOT EXISTS search_refs_rid ON search_refs (rid);

CREATE OR REPLACE FUNCTION search_index(p_rid bigint, p_body bytea) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    j jsonb;
BEGIN
    -- A body jsonb refuses (a \u0000 escape, bytes that are not UTF-8) is
    -- left out of the indexes rather than failing the write. The block
    -- writes nothing, so its subtransaction takes no transaction id.
    BEGIN
        j := convert_from(p_body, 'UTF8')::jsonb;
    EXCEPTION WHEN others THEN
        RETURN;
    END;
    IF jsonb_typeof(j) <> 'object' THEN
        RETURN;
    END IF;
    INSERT INTO search_text (rid, doc) VALUES (p_rid,
        setweight(to_tsvector('simple', coalesce(j->>'name', '')), 'A') ||
        setweight(to_tsvector('simple', coalesce(j->>'pattern', j->>'value', '')), 'B') ||
        setweight(to_tsvector('simple', coalesce((SELECT string_agg(x, ' ') FROM jsonb_array_elements_text(
            CASE WHEN jsonb_typeof(j->'labels') = 'array' THEN j->'labels' ELSE '[]'::jsonb END) x), '')), 'B') ||
        setweight(to_tsvector('simple', coalesce(j->>'description', '')), 'C'))
    ON CONFLICT (rid) DO NOTHING;
    INSERT INTO search_refs (target, rid)
    SELECT DISTINCT r, p_rid FROM (
        SELECT e.value #>> '{}' AS r
        FROM jsonb_path_query(j, 'strict $.**{0 to last}') o, jsonb_each(o) e
        WHERE jsonb_typeof(o) = 'object' AND e.key LIKE '%\_ref' AND e.key <> 'marking_ref' AND jsonb_typeof(e.value) = 'string'
        UNION ALL
        SELECT x
        FROM jsonb_path_query(j, 'strict $.**{0 to last}') o, jsonb_each(o) e, jsonb_array_elements_text(e.value) x
        WHERE jsonb_typeof(o) = 'object' AND e.key LIKE '%\_refs' AND e.key <> 'object_marking_refs' AND jsonb_typeof(e.value) = 'array'
    ) s WHERE r LIKE '%--%'
    ON CONFLICT DO NOTHING;
END $$;

CREATE OR REPLACE FUNCTION search_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM search_index(NEW.rid, NEW.body);
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS search_add ON objects;
CREATE TRIGGER search_add AFTER INSERT ON objects FOR EACH ROW EXECUTE FUNCTION search_add();

-- Objects stored before this migration.
SELECT search_index(rid, body) FROM objects;
