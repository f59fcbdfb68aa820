-- name: touch_token
-- returns: nothing
-- Records that a token was used; at most once a minute per token, so it is not a write per request.
UPDATE api_tokens SET last_used_at = now()
WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
