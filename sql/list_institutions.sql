-- name: list_institutions
-- returns: rows
-- Every institution with how many live (unrevoked) tokens it holds, for the admin listing.
SELECT i.id, i.slug, i.display_name, i.tier, i.hourly_limit, i.created_at, i.disabled_at,
       count(t.id) FILTER (WHERE t.revoked_at IS NULL) AS live_tokens
FROM institutions i LEFT JOIN api_tokens t ON t.institution_id = i.id
GROUP BY i.id ORDER BY i.slug
