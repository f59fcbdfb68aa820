-- name: release_index_maintenance_lock
-- returns: value
-- Releases the index maintenance advisory lock taken by try_index_maintenance_lock.
SELECT pg_advisory_unlock($1::bigint)
