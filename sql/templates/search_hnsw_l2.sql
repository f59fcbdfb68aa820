-- name: search_hnsw_l2
-- returns: rows
-- Nearest neighbours (l2) in a collection that has an HNSW index: approximate through the
-- index for the rows it covers (seq <= the index's seq), exact for the rows written since (the
-- tail, found through vectors_collection_seq), merged. Each row also carries how many hits the
-- index part found (from_index): fewer than top_k means the index may have come up short, and
-- the caller runs the exact query instead. A template: db/hnsw.py renders {collection_id},
-- {dimensions} and {seq} (integers only) because the planner uses the partial expression index
-- only when the query repeats its expression, cast and all, and its predicate literally, and
-- PostgreSQL takes neither as a parameter. Run it in a transaction after
-- sql/set_search_params.sql. Iterative scans may return candidates slightly out of order
-- (relaxed_order), so they are re-sorted outside the MATERIALIZED CTE, where the distance
-- cut-off also belongs.
WITH indexed AS MATERIALIZED (
    SELECT id, metadata, embedding::vector({dimensions}) <-> $1 AS distance
    FROM vectors
    WHERE collection_id = {collection_id} AND seq <= {seq}
      AND ($2::jsonb IS NULL OR metadata @> $2::jsonb)
    ORDER BY embedding::vector({dimensions}) <-> $1
    LIMIT $3
), found AS (
    SELECT id, metadata, distance FROM indexed WHERE $4::float8 IS NULL OR distance <= $4::float8
), tail AS (
    SELECT id, metadata, embedding <-> $1 AS distance
    FROM vectors
    WHERE collection_id = {collection_id} AND seq > {seq}
      AND ($2::jsonb IS NULL OR metadata @> $2::jsonb)
      AND ($4::float8 IS NULL OR (embedding <-> $1) <= $4::float8)
    ORDER BY distance
    LIMIT $3
)
SELECT id, metadata, distance, (SELECT count(*) FROM found) AS from_index
FROM (SELECT id, metadata, distance FROM found UNION ALL SELECT id, metadata, distance FROM tail) AS hits
ORDER BY distance, id
LIMIT $3
