-- name: get_qac_model
-- returns: row
-- An institution's QAC model by id, without its graph. Another institution's model is not found.
SELECT id, engine, k_nn, weight, sigma, reinforce_rate, layers, beta, lambda_entropy, n_cells, dims, nnz,
       created_at, version
FROM qac_models
WHERE id = $1 AND institution_id = $2
