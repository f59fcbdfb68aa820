-- name: stale_hnsw_indexes
-- returns: rows
-- HNSW indexes that should go: replaced by a newer build (not the collection's index_seq), kept
-- by a collection that no longer exists (deleting a collection cannot drop its index in the same
-- transaction without locking every collection's writes), or left invalid by an interrupted
-- build. Run only while holding the index maintenance lock, so no build is in progress and
-- "invalid" means "abandoned".
SELECT m[1]::bigint AS collection_id, m[2]::bigint AS seq
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
CROSS JOIN LATERAL regexp_match(c.relname, '^vectors_hnsw_([0-9]+)_([0-9]+)$') AS m
WHERE i.indrelid = 'vectors'::regclass
  AND m IS NOT NULL
  AND (NOT i.indisvalid
       OR NOT EXISTS (SELECT 1 FROM collections k WHERE k.id = m[1]::bigint AND k.index_seq = m[2]::bigint))
ORDER BY 1, 2
