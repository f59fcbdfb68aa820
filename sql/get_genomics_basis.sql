-- name: get_genomics_basis
-- returns: value
-- A project's projection basis as JSON text: the caller decodes it in a worker thread, since it
-- can hold millions of numbers (the pool's jsonb codec would decode it on the event loop).
SELECT basis::text FROM genomics_projects WHERE institution_id = $1 AND project_id = $2
