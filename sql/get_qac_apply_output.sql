-- name: get_qac_apply_output
-- returns: row
-- A succeeded qac_apply job's smoothed embedding (the caller has already found the job its own).
SELECT n_cells, dims, embedding
FROM qac_apply_outputs
WHERE job_id = $1
