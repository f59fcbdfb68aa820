-- Genomics projects: the projection basis a build computed (genes, means, components) and the
-- collection holding the project's cell or cluster vectors. Deleting that collection deletes
-- the project with it.
-- depends: 0005.vector-collections
CREATE TABLE genomics_projects (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    institution_id bigint NOT NULL REFERENCES institutions (id),
    project_id     text NOT NULL CHECK (project_id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'),
    collection_id  bigint NOT NULL UNIQUE REFERENCES collections (id) ON DELETE CASCADE,
    mode           text NOT NULL CHECK (mode IN ('cell', 'cluster')),
    dimensions     integer NOT NULL CHECK (dimensions BETWEEN 1 AND 2000),
    gene_count     integer NOT NULL CHECK (gene_count > 0),
    cell_count     integer NOT NULL CHECK (cell_count > 0),
    vector_count   integer NOT NULL CHECK (vector_count >= 0),
    basis          jsonb NOT NULL CHECK (jsonb_typeof(basis) = 'object'),
    stats          jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(stats) = 'object'),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT genomics_projects_id_per_institution UNIQUE (institution_id, project_id)
);
