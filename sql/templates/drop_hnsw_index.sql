-- name: drop_hnsw_index
-- returns: nothing
-- Drops one HNSW index without blocking reads or writes: one replaced by a newer build, one of
-- a deleted collection, or one an interrupted build left invalid. A template: db/hnsw.py renders
-- {collection_id} and {seq} (integers; DDL takes no parameters) and runs it outside any transaction.
DROP INDEX CONCURRENTLY IF EXISTS vectors_hnsw_{collection_id}_{seq}
