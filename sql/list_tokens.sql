-- name: list_tokens
-- returns: rows
-- An institution's tokens, newest first, as the admin sees them: prefix and dates, never a hash.
SELECT id, label, prefix, created_at, last_used_at, revoked_at FROM api_tokens
WHERE institution_id = $1 ORDER BY created_at DESC, id DESC
