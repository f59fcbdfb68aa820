-- name: insert_audit_rows
-- returns: nothing
-- Writes a batch of audit rows in one round trip: each parameter is an array holding one
-- element per row, so one request's row and a hundred concurrent requests' rows cost the same.
INSERT INTO audit_logs (occurred_at, institution, action, trace_id, resource_type, resource_id,
                        ip_address, user_agent, metadata)
SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::inet[], $8::text[], $9::jsonb[])
