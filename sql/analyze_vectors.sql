-- name: analyze_vectors
-- returns: nothing
-- Refreshes the planner's statistics on the vectors table after an HNSW build (bulk load, build
-- the index, then ANALYZE): without them a metadata filter's selectivity is guessed, and the
-- planner can prefer a full scan of the collection to its index. ANALYZE samples a bounded
-- number of rows, so its cost does not grow with the table.
ANALYZE vectors
