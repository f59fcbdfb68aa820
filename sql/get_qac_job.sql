-- name: get_qac_job
-- returns: row
-- One QAC job ($1) of institution $2, with what the original service's job shape needs: the model
-- id from its params and updated_at; the result as JSON text (small: an apply's smoothed embedding
-- is in qac_apply_outputs). Another institution's job, or a job of another type, is not found.
SELECT id, type, status, progress, params ->> 'model_id' AS model_id, result::text AS result_json, error,
       created_at, updated_at
FROM jobs
WHERE id = $1 AND institution_id = $2 AND type IN ('qac_fit', 'qac_apply')
