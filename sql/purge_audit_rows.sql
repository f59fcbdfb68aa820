-- name: purge_audit_rows
-- returns: value
-- Purges one bounded batch ($2 rows) of audit rows older than $1 days through audit_purge()
-- (migration 0007): the oldest in id order, stopping at the first row still within retention,
-- so what goes is a prefix of the chain, and it records where that prefix ended so the rest
-- still verifies. Returns how many rows went; the caller repeats until a batch comes up short.
SELECT audit_purge($1::integer, $2::integer)
