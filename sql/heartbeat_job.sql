-- name: heartbeat_job
-- returns: value
-- Worker $2 renews its lease on job $1 by $3 seconds and records progress $4; returns whether a
-- cancel was requested. NULL: the job is no longer this worker's (its lease ran out and it was reaped).
UPDATE jobs
SET lease_expires_at = now() + make_interval(secs => $3::float8),
    progress = greatest(progress, $4::real),
    updated_at = now()
WHERE id = $1 AND worker = $2 AND status = 'running'
RETURNING cancel_requested
