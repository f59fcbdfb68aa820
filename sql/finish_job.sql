-- name: finish_job
-- returns: row
-- Worker $2 ends job $1 with status $3 (succeeded, failed or cancelled), result $4, error $5.
-- No row: the job is no longer this worker's, so nothing it computed may be stored.
UPDATE jobs
SET status = $3,
    result = $4,
    error = $5,
    progress = CASE WHEN $3 = 'succeeded' THEN 1 ELSE progress END,
    lease_expires_at = NULL,
    worker = NULL,
    finished_at = now(),
    updated_at = now()
WHERE id = $1 AND worker = $2 AND status = 'running'
RETURNING id, status, attempts, started_at, finished_at
