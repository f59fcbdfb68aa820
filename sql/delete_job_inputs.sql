-- name: delete_job_inputs
-- returns: nothing
-- Drops job $1's input chunks: its job has ended, whatever the outcome.
DELETE FROM job_inputs WHERE job_id = $1
