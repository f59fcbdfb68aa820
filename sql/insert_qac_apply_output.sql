-- name: insert_qac_apply_output
-- returns: nothing
-- Stores a qac_apply job's smoothed embedding ($4: float64 little-endian, $2 cells × $3 dims).
INSERT INTO qac_apply_outputs (job_id, n_cells, dims, embedding)
VALUES ($1, $2, $3, $4)
