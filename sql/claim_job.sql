-- name: claim_job
-- returns: row
-- Worker $1 takes the oldest queued job of one of the types it runs ($3) and holds it by a lease
-- of $2 seconds. SKIP LOCKED: concurrent claimers each take a different job, none waits on another.
UPDATE jobs AS j
SET status = 'running',
    attempts = j.attempts + 1,
    worker = $1,
    lease_expires_at = now() + make_interval(secs => $2::float8),
    started_at = now(),
    progress = 0,
    updated_at = now()
FROM institutions AS i
WHERE i.id = j.institution_id
  AND j.status = 'queued'
  AND j.id = (
      SELECT id FROM jobs
      WHERE status = 'queued' AND type = ANY ($3::text[])
      ORDER BY created_at, id
      LIMIT 1
      FOR UPDATE SKIP LOCKED
  )
RETURNING j.id, j.type, j.params, j.project_id, j.attempts, j.max_attempts, j.trace_id, j.cancel_requested,
          j.institution_id, i.slug AS institution
