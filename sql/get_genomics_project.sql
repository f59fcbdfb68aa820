-- name: get_genomics_project
-- returns: row
-- An institution's genomics project by its project id, without the (possibly large) basis.
SELECT p.project_id, p.collection_id, c.name AS collection, p.mode, p.dimensions, p.gene_count, p.cell_count,
       p.vector_count, p.stats, p.created_at, p.updated_at
FROM genomics_projects p
JOIN collections c ON c.id = p.collection_id
WHERE p.institution_id = $1 AND p.project_id = $2
