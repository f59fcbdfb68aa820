-- name: disable_institution
-- returns: row
-- Disables an institution (its tokens then get 403); keeps the first disable time if repeated.
UPDATE institutions SET disabled_at = coalesce(disabled_at, now()) WHERE slug = $1
RETURNING id, slug, disabled_at
