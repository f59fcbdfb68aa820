-- name: lock_collection
-- returns: row
-- Locks a collection row (by id, within its institution) for the rest of the transaction, so
-- writes to one collection take turns and its vector_count stays exact; no row if it is gone.
SELECT id, dimensions, metric, vector_count
FROM collections
WHERE id = $1 AND institution_id = $2
FOR NO KEY UPDATE
