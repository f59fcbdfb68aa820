-- name: find_audit_rows
-- returns: rows
-- Which of these (trace id, time) pairs have a committed audit row: resolves a batch whose
-- commit acknowledgement was lost (the connection died after the INSERT was sent).
SELECT a.trace_id, a.occurred_at
FROM audit_logs a
JOIN unnest($1::text[], $2::timestamptz[]) AS k(trace_id, occurred_at)
  ON a.trace_id = k.trace_id AND a.occurred_at = k.occurred_at
