-- name: set_index_build_memory
-- returns: value
-- Raises maintenance_work_mem for this session before an HNSW build, so the graph is built in
-- memory (much faster than once it spills). CREATE INDEX CONCURRENTLY cannot run in a
-- transaction, so this is a session setting; the pool's RESET ALL on release undoes it.
SELECT set_config('maintenance_work_mem', $1::text, false)
