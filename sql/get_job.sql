-- name: get_job
-- returns: row
-- One job ($1) as its institution ($2) sees it; another institution's job is not found.
SELECT id, type, status, progress, project_id, cancel_requested, created_at, started_at, finished_at,
       result, error
FROM jobs
WHERE id = $1 AND institution_id = $2
