-- name: revoke_token
-- returns: row
-- Revokes a token by its public prefix; keeps the first revocation time if repeated.
UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE prefix = $1
RETURNING id, prefix, revoked_at
