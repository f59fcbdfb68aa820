-- QAC models: per institution, the parameters of a fit and the graph it built over the
-- embedding (the symmetrised kNN weight matrix W, as CSR arrays), so that apply uses the graph
-- fitted, not one rebuilt from the apply-time embedding. The arrays are bytea of little-endian
-- values: graph_indptr int64 × (n_cells + 1), graph_indices int32 × nnz (column of each entry),
-- graph_weights float64 × nnz. Each cell keeps its k_nn neighbours and gains those that chose it,
-- so nnz lies between n_cells·k_nn and 2·n_cells·k_nn.
-- depends: 0008.jobs
CREATE TABLE qac_models (
    id             uuid PRIMARY KEY,
    institution_id bigint NOT NULL REFERENCES institutions (id),
    engine         text NOT NULL CHECK (engine IN ('real_qac', 'laplace')),
    k_nn           integer NOT NULL CHECK (k_nn BETWEEN 1 AND 128),
    weight         text NOT NULL CHECK (weight IN ('binary', 'gaussian')),
    sigma          double precision CHECK (sigma > 0 AND sigma < 'Infinity'),
    reinforce_rate double precision NOT NULL CHECK (reinforce_rate BETWEEN 0 AND 1),
    layers         integer NOT NULL CHECK (layers BETWEEN 1 AND 100000),
    beta           double precision NOT NULL CHECK (beta BETWEEN 0 AND 10),
    lambda_entropy double precision NOT NULL CHECK (lambda_entropy BETWEEN 0 AND 10),
    n_cells        integer NOT NULL CHECK (n_cells > k_nn),
    dims           integer NOT NULL CHECK (dims > 0),
    nnz            bigint NOT NULL,
    graph_indptr   bytea NOT NULL,
    graph_indices  bytea NOT NULL,
    graph_weights  bytea NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    version        text NOT NULL DEFAULT '1',
    CONSTRAINT qac_models_sigma_iff_gaussian CHECK ((weight = 'gaussian') = (sigma IS NOT NULL)),
    CONSTRAINT qac_models_nnz CHECK (nnz BETWEEN n_cells::bigint * k_nn AND 2 * n_cells::bigint * k_nn),
    CONSTRAINT qac_models_indptr_size CHECK (octet_length(graph_indptr) = 8 * (n_cells::bigint + 1)),
    CONSTRAINT qac_models_indices_size CHECK (octet_length(graph_indices) = 4 * nnz),
    CONSTRAINT qac_models_weights_size CHECK (octet_length(graph_weights) = 8 * nnz)
);

CREATE INDEX qac_models_by_institution ON qac_models (institution_id, created_at);

-- The arrays are binary numbers pglz would barely shrink: store them out of line uncompressed.
ALTER TABLE qac_models ALTER COLUMN graph_indptr SET STORAGE EXTERNAL,
                       ALTER COLUMN graph_indices SET STORAGE EXTERNAL,
                       ALTER COLUMN graph_weights SET STORAGE EXTERNAL;

-- The smoothed embedding of a succeeded qac_apply job: float64 little-endian, cells × dims, row
-- by row. Kept out of jobs.result (which holds the rest of the answer) because 50,000 × 32 numbers
-- as jsonb are 30 MB that every read would parse; GET /api/v1/quantum/qac/jobs/{id} joins them
-- back into the answer. Deleted with its job.
CREATE TABLE qac_apply_outputs (
    job_id    uuid PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    n_cells   integer NOT NULL CHECK (n_cells > 0),
    dims      integer NOT NULL CHECK (dims > 0),
    embedding bytea NOT NULL,
    CONSTRAINT qac_apply_outputs_size CHECK (octet_length(embedding) = 8 * n_cells::bigint * dims)
);

ALTER TABLE qac_apply_outputs ALTER COLUMN embedding SET STORAGE EXTERNAL;
