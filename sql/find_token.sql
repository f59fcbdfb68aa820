-- name: find_token
-- returns: row
-- Looks a presented token up by its SHA-256, with its institution, for authentication.
SELECT t.id AS token_id, t.prefix, t.revoked_at,
       i.id AS institution_id, i.slug, i.tier, i.hourly_limit, i.disabled_at
FROM api_tokens t
JOIN institutions i ON i.id = t.institution_id
WHERE t.token_sha256 = $1
