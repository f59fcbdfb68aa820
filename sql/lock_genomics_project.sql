-- name: lock_genomics_project
-- returns: value
-- Serialises builds of one project (institution $1, project id $2) until the transaction ends,
-- including the first build, when there is no row yet to lock. A hash collision between two
-- projects only makes them take turns.
SELECT pg_advisory_xact_lock(hashtextextended($2::text, $1::bigint))::text
