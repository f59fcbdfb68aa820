-- name: purge_audit_rows
-- returns: nothing
-- Deletes one bounded batch ($2 rows) of audit rows older than $1 days, oldest first, so a
-- purge never holds locks on the table for long; the caller repeats until a batch is empty.
DELETE FROM audit_logs WHERE id IN (
    SELECT id FROM audit_logs WHERE occurred_at < now() - make_interval(days => $1)
    ORDER BY occurred_at LIMIT $2
)
