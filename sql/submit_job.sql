-- name: submit_job
-- returns: row
-- Records a new queued job for institution $1: type $2, params $3, project $4 (NULL when the
-- job is not about one project), max attempts $5, the submitting request's trace id $6. A second
-- queued or running job of the same type and project fails on jobs_one_active_per_project (409).
INSERT INTO jobs (institution_id, type, params, project_id, max_attempts, trace_id)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id, type, status, progress, project_id, cancel_requested, created_at, started_at, finished_at,
          result, error
