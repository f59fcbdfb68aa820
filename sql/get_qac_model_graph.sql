-- name: get_qac_model_graph
-- returns: row
-- An institution's QAC model by id with its graph arrays, for apply.
SELECT id, engine, k_nn, weight, sigma, reinforce_rate, layers, beta, lambda_entropy, n_cells, dims, nnz,
       created_at, version, graph_indptr, graph_indices, graph_weights
FROM qac_models
WHERE id = $1 AND institution_id = $2
