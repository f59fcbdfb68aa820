-- name: delete_collection
-- returns: value
-- Deletes an institution's collection by name (its vectors go with it, ON DELETE CASCADE);
-- returns its id so its HNSW index can be dropped afterwards, or NULL if there was none.
DELETE FROM collections WHERE institution_id = $1 AND name = $2 RETURNING id
