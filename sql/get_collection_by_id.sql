-- name: get_collection_by_id
-- returns: row
-- One collection by id (for the index maintainer, which works across institutions), with the
-- state of its current HNSW index (index_seq; NULL: none, false: invalid, true: in use).
SELECT c.id, c.name, c.dimensions, c.metric, c.vector_count, c.index_seq, c.index_ef_search, c.index_recall,
       c.writes_since_index,
       c.created_at, c.updated_at,
       (SELECT i.indisvalid FROM pg_index i
        WHERE i.indexrelid = to_regclass(format('vectors_hnsw_%s_%s', c.id, c.index_seq))) AS index_valid
FROM collections c
WHERE c.id = $1
