-- name: upsert_vectors
-- returns: row
-- Bulk upsert of one request's vectors in a single statement: $2..$4 are parallel arrays
-- (ids, vectors in pgvector's binary format, metadata as JSON text cast to jsonb here because
-- the pool's jsonb codec is text-only). New ids are inserted, existing ids overwritten; either
-- way the row takes a new seq, so it is past the collection's HNSW index (index_seq) and is
-- searched exactly until the next build. The collection's vector_count grows by the number of
-- new ids. All parts of the statement share one snapshot, so `existing` counts the ids present
-- before it; the caller holds the collection's row lock (lock_collection), so no concurrent
-- write can change that count meanwhile.
WITH existing AS (
    SELECT count(*) AS n FROM vectors WHERE collection_id = $1 AND id = ANY ($2::text[])
), written AS (
    INSERT INTO vectors (collection_id, id, embedding, metadata)
    SELECT $1, t.id, t.embedding, t.metadata::jsonb
    FROM unnest($2::text[], $3::vector[], $4::text[]) AS t (id, embedding, metadata)
    ORDER BY t.id
    ON CONFLICT (collection_id, id) DO UPDATE
        SET embedding = EXCLUDED.embedding, metadata = EXCLUDED.metadata, seq = DEFAULT, updated_at = now()
    RETURNING 1
)
UPDATE collections
SET vector_count = vector_count + (SELECT count(*) FROM written) - (SELECT n FROM existing),
    writes_since_index = writes_since_index + (SELECT count(*) FROM written),
    updated_at = now()
WHERE id = $1
RETURNING (SELECT count(*) FROM written) AS written,
          (SELECT count(*) FROM written) - (SELECT n FROM existing) AS inserted,
          vector_count
