-- name: audit_chain_rows
-- returns: rows
-- One chunk of the chain for `audit verify`: up to $2 rows after id $1 (keyset, in id order),
-- each with its stored hashes and whether its stored hash still matches its content, recomputed
-- here with audit_row_hash (only the hashes leave the server, never the rows).
SELECT id, prev_hash, row_hash,
       coalesce(row_hash = audit_row_hash(prev_hash, id, occurred_at, institution, action, trace_id, resource_type,
                                          resource_id, ip_address, user_agent, metadata), false) AS content_ok
FROM audit_logs
WHERE id > $1
ORDER BY id
LIMIT $2
