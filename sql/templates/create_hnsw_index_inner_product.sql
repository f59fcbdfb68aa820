-- name: create_hnsw_index_inner_product
-- returns: nothing
-- Builds the HNSW index of one inner_product collection without blocking writes: a partial index over
-- that collection's rows up to write sequence {seq}, on the expression
-- embedding::vector({dimensions}) (HNSW needs a fixed dimension; the shared column has none).
-- Rows written later have a higher seq, so they never pay for HNSW insertion; searches scan
-- them exactly until the next build. A template: db/hnsw.py renders {collection_id},
-- {dimensions} and {seq} (integers only; DDL takes no parameters) and runs it outside any
-- transaction, as CONCURRENTLY requires. m and ef_construction are pgvector's defaults.
CREATE INDEX CONCURRENTLY IF NOT EXISTS vectors_hnsw_{collection_id}_{seq}
ON vectors USING hnsw ((embedding::vector({dimensions})) vector_ip_ops)
WITH (m = 16, ef_construction = 64)
WHERE collection_id = {collection_id} AND seq <= {seq}
