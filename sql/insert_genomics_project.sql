-- name: insert_genomics_project
-- returns: row
-- Records a built project. The basis arrives as JSON text (encoded in a worker thread) and is
-- cast here; created_at carries over from the build it replaces ($11, NULL on the first build).
INSERT INTO genomics_projects (institution_id, project_id, collection_id, mode, dimensions, gene_count,
                               cell_count, vector_count, basis, stats, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::jsonb, $10, coalesce($11, now()))
RETURNING project_id, created_at, updated_at
