-- The audit trail: one row per HTTP request, written by the audit middleware before the
-- response's last byte leaves. HTTP details live in metadata (jsonb); never raw bodies or tokens.
-- depends: 0001.enable-vector
CREATE TABLE audit_logs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at   timestamptz NOT NULL DEFAULT now(),
    institution   text NOT NULL,
    action        text NOT NULL,
    trace_id      text NOT NULL,
    resource_type text,
    resource_id   text,
    ip_address    inet,
    user_agent    text,
    metadata      jsonb NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT audit_logs_metadata_is_object CHECK (jsonb_typeof(metadata) = 'object')
);

-- "One institution's rows over time", newest first, with id as the keyset tie-breaker.
CREATE INDEX audit_logs_institution_time ON audit_logs (institution, occurred_at DESC, id DESC);

-- "Everything that happened under this trace id".
CREATE INDEX audit_logs_trace_id ON audit_logs (trace_id);

-- Retention purges by age across all institutions.
CREATE INDEX audit_logs_occurred_at ON audit_logs (occurred_at);
