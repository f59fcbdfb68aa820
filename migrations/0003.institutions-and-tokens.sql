-- Institutions (each with an hourly request quota) and their API tokens. A token's plaintext
-- is shown once when issued; only its SHA-256 is stored, with a short public prefix to name it.
-- depends: 0002.audit-logs
CREATE TABLE institutions (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug         text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    display_name text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    tier         text NOT NULL DEFAULT 'academic' CHECK (tier IN ('academic', 'nonprofit', 'commercial', 'internal')),
    hourly_limit integer NOT NULL DEFAULT 1000 CHECK (hourly_limit > 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    disabled_at  timestamptz
);

CREATE TABLE api_tokens (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    institution_id bigint NOT NULL REFERENCES institutions (id),
    label          text NOT NULL DEFAULT '' CHECK (length(label) <= 200),
    prefix         text NOT NULL UNIQUE,
    token_sha256   bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_used_at   timestamptz,
    revoked_at     timestamptz
);

CREATE INDEX api_tokens_institution ON api_tokens (institution_id);
