-- name: begin_index_build
-- returns: row
-- Starts an HNSW build for collection $1: the index will cover its rows up to the highest seq
-- written so far, so the write counter that triggers the next build restarts from zero. No row
-- when the collection is gone; seq is NULL when it is empty.
UPDATE collections SET writes_since_index = 0
WHERE id = $1
RETURNING dimensions, metric, (SELECT max(seq) FROM vectors WHERE collection_id = $1) AS seq
