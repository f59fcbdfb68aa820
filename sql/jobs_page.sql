-- name: jobs_page
-- returns: rows
-- One institution's jobs ($1), newest first, after the keyset cursor ($2 created_at, $3 id:
-- jobs strictly older; NULL = from the newest), at most $4.
SELECT id, type, status, progress, project_id, cancel_requested, created_at, started_at, finished_at,
       result, error
FROM jobs
WHERE institution_id = $1
  AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
ORDER BY created_at DESC, id DESC
LIMIT $4
