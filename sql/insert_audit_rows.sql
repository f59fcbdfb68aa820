-- name: insert_audit_rows
-- returns: value
-- Appends a batch of audit rows to the hash chain in one round trip (audit_append, migration
-- 0007): each parameter is an array holding one element per row, so one request's row and a
-- hundred concurrent requests' rows cost the same. Returns the id of the batch's last row.
-- Addresses go as text and are cast here: asyncpg's inet codec parses each one in Python
-- (ipaddress), per row on the hot path; they are canonical already (api/audit_row.py).
SELECT audit_append($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                    $7::text[]::inet[], $8::text[], $9::jsonb[])
