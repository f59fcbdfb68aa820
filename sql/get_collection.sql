-- name: get_collection
-- returns: row
-- One collection of an institution by name, with the state of its current HNSW index
-- (index_seq; NULL: none, false: invalid, true: in use). Another institution's collection is not found.
-- Every vector request runs this, so the index's catalog look-up (to_regclass on its name) is
-- made only for a collection that has an index.
SELECT c.id, c.name, c.dimensions, c.metric, c.vector_count, c.index_seq, c.index_ef_search, c.index_recall,
       c.writes_since_index,
       c.created_at, c.updated_at,
       CASE WHEN c.index_seq IS NOT NULL THEN
           (SELECT i.indisvalid FROM pg_index i
            WHERE i.indexrelid = to_regclass(format('vectors_hnsw_%s_%s', c.id, c.index_seq)))
       END AS index_valid
FROM collections c
WHERE c.institution_id = $1 AND c.name = $2
