-- name: calibration_sample
-- returns: rows
-- Vectors of collection $1 covered by the index up to seq $2 to use as calibration queries: $3
-- of them, in an order fixed by their ids (so a rebuild on the same data measures the same sample).
SELECT id, embedding FROM vectors WHERE collection_id = $1 AND seq <= $2 ORDER BY hashtext(id), id LIMIT $3
