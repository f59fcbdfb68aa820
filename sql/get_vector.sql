-- name: get_vector
-- returns: row
-- One vector of a collection by id, with its metadata.
SELECT id, embedding, metadata, updated_at FROM vectors WHERE collection_id = $1 AND id = $2
