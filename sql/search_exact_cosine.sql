-- name: search_exact_cosine
-- returns: rows
-- Exact nearest neighbours in a collection by cosine distance (1 - cosine similarity): every vector of the collection
-- (optionally only those whose metadata contains the filter $3, optionally only within distance
-- $5) is compared, nearest first, ties by id. No index can serve this ORDER BY (the HNSW indexes
-- are on embedding::vector(n)), so it is exact by construction: the reference and the fallback.
SELECT id, metadata, embedding <=> $2 AS distance
FROM vectors
WHERE collection_id = $1
  AND ($3::jsonb IS NULL OR metadata @> $3::jsonb)
  AND ($5::float8 IS NULL OR (embedding <=> $2) <= $5::float8)
ORDER BY distance, id
LIMIT $4
