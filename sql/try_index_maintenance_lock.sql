-- name: try_index_maintenance_lock
-- returns: value
-- Takes the session-level advisory lock that serialises HNSW builds and drops across every
-- process of the service (they would queue on the vectors table's lock anyway); false when
-- another session holds it. The pool's reset on release unlocks it if the holder forgets.
SELECT pg_try_advisory_lock($1::bigint)
