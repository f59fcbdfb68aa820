-- name: insert_audit_rows
-- returns: value
-- Appends a batch of audit rows to the hash chain in one round trip (audit_append, migration
-- 0007) and returns the id of the batch's last row. The batch arrives as ONE json text, an array
-- of row objects in batch order, unpacked here into the arrays audit_append takes: encoding nine
-- arrays element by element in the driver cost about 25 us a row, a third of the live path's CPU;
-- one json.dumps of the batch costs a few. Addresses arrive as text and are cast to inet here
-- (they are canonical already: api/audit_row.py). The text is parsed once, as jsonb: each row's
-- metadata is then taken out as jsonb, not parsed a second time (json_to_recordset did), about 5 %
-- of a 50-row batch's time in the database (bench/audit_batch_parts.py).
SELECT audit_append(
    array_agg(r.occurred_at ORDER BY r.n),
    array_agg(r.institution ORDER BY r.n),
    array_agg(r.action ORDER BY r.n),
    array_agg(r.trace_id ORDER BY r.n),
    array_agg(r.resource_type ORDER BY r.n),
    array_agg(r.resource_id ORDER BY r.n),
    array_agg(r.ip_address::inet ORDER BY r.n),
    array_agg(r.user_agent ORDER BY r.n),
    array_agg(r.metadata ORDER BY r.n)
)
FROM ROWS FROM (
    jsonb_to_recordset($1::text::jsonb) AS (
        occurred_at timestamptz, institution text, action text, trace_id text, resource_type text,
        resource_id text, ip_address text, user_agent text, metadata jsonb
    )
) WITH ORDINALITY AS r (
    occurred_at, institution, action, trace_id, resource_type, resource_id, ip_address, user_agent, metadata, n
)
