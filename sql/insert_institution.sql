-- name: insert_institution
-- returns: row
-- Creates an institution; a duplicate slug raises a unique violation.
INSERT INTO institutions (slug, display_name, tier, hourly_limit) VALUES ($1, $2, $3, $4)
RETURNING id, slug, display_name, tier, hourly_limit, created_at, disabled_at
