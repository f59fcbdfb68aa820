-- name: delete_vector
-- returns: value
-- Deletes one vector and keeps the collection's vector_count exact; returns how many went (0 or 1).
-- The caller holds the collection's row lock (lock_collection).
WITH gone AS (
    DELETE FROM vectors WHERE collection_id = $1 AND id = $2 RETURNING 1
)
UPDATE collections
SET vector_count = vector_count - (SELECT count(*) FROM gone), updated_at = now()
WHERE id = $1
RETURNING (SELECT count(*) FROM gone)
