-- Hourly request counters, one row per institution per UTC hour (fixed window). The service
-- increments a row with one atomic upsert per request, so the quota holds across all instances.
-- depends: 0003.institutions-and-tokens
CREATE TABLE rate_limit_windows (
    institution_id bigint NOT NULL REFERENCES institutions (id),
    window_start   timestamptz NOT NULL,
    hits           integer NOT NULL CHECK (hits >= 0),
    PRIMARY KEY (institution_id, window_start)
);

-- Retention purges old windows by age.
CREATE INDEX rate_limit_windows_start ON rate_limit_windows (window_start);
