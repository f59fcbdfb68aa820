-- name: release_job
-- returns: value
-- Worker $2 gives job $1 back to the queue (it is shutting down, or could not start the job):
-- the attempt does not count. Returns the job's id, NULL if it was no longer this worker's.
UPDATE jobs
SET status = 'queued',
    attempts = greatest(attempts - 1, 0),
    lease_expires_at = NULL,
    worker = NULL,
    started_at = NULL,
    progress = 0,
    updated_at = now()
WHERE id = $1 AND worker = $2 AND status = 'running'
RETURNING id
