-- name: insert_token
-- returns: row
-- Stores a new token's hash and public prefix (never its plaintext).
INSERT INTO api_tokens (institution_id, label, prefix, token_sha256) VALUES ($1, $2, $3, $4)
RETURNING id, prefix, created_at
