-- Vector collections (name, dimensions, metric; unique per institution) and their vectors.
-- Every collection's vectors share one table with an untyped `vector` column, so collections of
-- any dimension live side by side. A large collection gets a partial HNSW index, built at run
-- time (sql/templates/create_hnsw_index_*.sql), over its rows up to a write sequence number
-- (collections.index_seq); rows written later (a higher `seq`) are searched exactly until the
-- next build, so writes never pay for HNSW insertion. After each build the service measures the
-- index's recall@10 on a sample of the collection and records the smallest hnsw.ef_search that
-- reaches its target (index_ef_search), or NULL when none does: that collection is then searched
-- exactly.
-- depends: 0004.rate-limits
CREATE TABLE collections (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    institution_id     bigint NOT NULL REFERENCES institutions (id),
    name               text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'),
    dimensions         integer NOT NULL CHECK (dimensions BETWEEN 1 AND 2000),
    metric             text NOT NULL CHECK (metric IN ('cosine', 'l2', 'inner_product')),
    vector_count       bigint NOT NULL DEFAULT 0 CHECK (vector_count >= 0),
    index_seq          bigint,
    index_ef_search    integer CHECK (index_ef_search BETWEEN 1 AND 1000),
    index_recall       real CHECK (index_recall BETWEEN 0 AND 1),
    writes_since_index bigint NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT collections_name_per_institution UNIQUE (institution_id, name)
);

CREATE TABLE vectors (
    collection_id bigint NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    id            text NOT NULL CHECK (length(id) BETWEEN 1 AND 200),
    embedding     vector NOT NULL,
    metadata      jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
    seq           bigint GENERATED ALWAYS AS IDENTITY,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (collection_id, id)
);

-- The rows of a collection written after its HNSW index was built (seq > index_seq).
CREATE INDEX vectors_collection_seq ON vectors (collection_id, seq);
