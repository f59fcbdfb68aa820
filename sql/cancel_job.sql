-- name: cancel_job
-- returns: row
-- Cancels job $1 of institution $2 if it has not ended: a queued job is cancelled at once, a
-- running one is marked cancel_requested for its worker, which stops it at its next heartbeat.
-- No row: not found, or already ended.
UPDATE jobs
SET status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END,
    finished_at = CASE WHEN status = 'queued' THEN now() ELSE finished_at END,
    cancel_requested = (status = 'running'),
    updated_at = now()
WHERE id = $1 AND institution_id = $2 AND status IN ('queued', 'running')
RETURNING id, type, status, progress, project_id, cancel_requested, created_at, started_at, finished_at,
          result, error
