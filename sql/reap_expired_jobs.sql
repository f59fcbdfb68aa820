-- name: reap_expired_jobs
-- returns: rows
-- Running jobs whose lease ran out (their worker died or lost the database): requeued while
-- attempts remain, else failed with error $1 (cancelled instead if a cancel was requested).
-- Ended ones lose their inputs in the same statement. SKIP LOCKED: a job being finished is left alone.
WITH expired AS (
    SELECT id FROM jobs
    WHERE status = 'running' AND lease_expires_at < now()
    ORDER BY lease_expires_at
    LIMIT 100
    FOR UPDATE SKIP LOCKED
), reaped AS (
    UPDATE jobs AS j
    SET status = CASE
            WHEN j.cancel_requested THEN 'cancelled'
            WHEN j.attempts < j.max_attempts THEN 'queued'
            ELSE 'failed'
        END,
        error = CASE WHEN NOT j.cancel_requested AND j.attempts >= j.max_attempts THEN $1 END,
        started_at = CASE WHEN NOT j.cancel_requested AND j.attempts < j.max_attempts THEN NULL ELSE j.started_at END,
        finished_at = CASE WHEN j.cancel_requested OR j.attempts >= j.max_attempts THEN now() END,
        lease_expires_at = NULL,
        worker = NULL,
        updated_at = now()
    FROM expired, institutions AS i
    WHERE j.id = expired.id AND i.id = j.institution_id
    RETURNING j.id, j.type, j.status, j.attempts, j.max_attempts, j.trace_id, j.error, j.started_at,
              j.finished_at, j.institution_id, i.slug AS institution
), dropped AS (
    DELETE FROM job_inputs WHERE job_id IN (SELECT id FROM reaped WHERE status <> 'queued')
)
SELECT id, type, status, attempts, max_attempts, trace_id, error, started_at, finished_at, institution_id,
       institution
FROM reaped
