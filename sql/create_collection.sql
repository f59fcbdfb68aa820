-- name: create_collection
-- returns: row
-- Creates a collection for an institution; a second one with the same name violates
-- collections_name_per_institution (answered 409).
INSERT INTO collections (institution_id, name, dimensions, metric)
VALUES ($1, $2, $3, $4)
RETURNING id, name, dimensions, metric, vector_count, index_seq, index_ef_search, index_recall, writes_since_index,
          created_at, updated_at
