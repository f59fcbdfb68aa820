-- name: insert_qac_model
-- returns: row
-- Records a fitted QAC model: its parameters and its graph as little-endian CSR arrays
-- (migrations/0009.qac-models.sql says the encoding).
INSERT INTO qac_models (id, institution_id, engine, k_nn, weight, sigma, reinforce_rate, layers, beta,
                        lambda_entropy, n_cells, dims, nnz, graph_indptr, graph_indices, graph_weights)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
RETURNING id, created_at, version
