-- name: finish_index_build
-- returns: nothing
-- Makes a freshly built (valid) HNSW index the one searches use, with the ef_search its
-- calibration chose ($3; NULL: no ef_search reached the recall target, so search exactly) and
-- the recall@10 it measured ($4). The index it replaces is then stale and dropped by
-- stale_hnsw_indexes / drop_hnsw_index.
UPDATE collections SET index_seq = $2, index_ef_search = $3, index_recall = $4 WHERE id = $1
