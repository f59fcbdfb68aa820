-- name: find_institution
-- returns: row
-- One institution by slug.
SELECT id, slug, display_name, tier, hourly_limit, created_at, disabled_at FROM institutions WHERE slug = $1
