-- name: hnsw_index_state
-- returns: value
-- Whether collection $1's current HNSW index (collections.index_seq) is usable: NULL when it has
-- none, false when it is invalid, true once valid.
SELECT i.indisvalid
FROM collections c
JOIN pg_index i ON i.indexrelid = to_regclass(format('vectors_hnsw_%s_%s', c.id, c.index_seq))
WHERE c.id = $1
