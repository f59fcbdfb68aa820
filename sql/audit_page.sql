-- name: audit_page
-- returns: rows
-- One institution's audit rows, newest first, with optional filters (NULL = no filter) and a
-- keyset cursor ($7 occurred_at, $8 id: rows strictly older). $9 NULL means no limit (export).
SELECT id, occurred_at, institution, action, trace_id, resource_type, resource_id,
       host(ip_address) AS ip_address, user_agent, metadata
FROM audit_logs
WHERE institution = $1
  AND ($2::timestamptz IS NULL OR occurred_at >= $2)
  AND ($3::timestamptz IS NULL OR occurred_at < $3)
  AND ($4::text IS NULL OR action = $4)
  AND ($5::int IS NULL OR metadata->'status_code' = to_jsonb($5::int))
  AND ($6::text IS NULL OR trace_id = $6)
  AND ($7::timestamptz IS NULL OR (occurred_at, id) < ($7, $8::bigint))
ORDER BY occurred_at DESC, id DESC
LIMIT $9
