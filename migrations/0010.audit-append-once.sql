-- audit_append, same arguments, same rows, same hashes, less work per row for the database (the
-- audit INSERT is the biggest statement every request waits for). Two costs of 0007's body go:
-- - nextval(pg_get_serial_sequence(...)) looked the sequence up again for every id drawn; it is
--   looked up once per batch.
-- - audit_row_hash(...) is inlined into the loop, and audit_field names its argument three times,
--   so each row's metadata was turned into text three times, its time into microseconds three times
--   and its address into text three times. Those three texts are made once per row; the hash is
--   the same expression over them: sha256(prev || audit_field(id) || ... || audit_field(metadata)).
-- audit_row_hash itself is unchanged: `audit verify` recomputes every row with it, so a difference
-- between the two would show as a broken chain (tests/test_audit_chain.py checks both against the
-- encoding computed outside the database). CREATE OR REPLACE keeps the owner and the grants.
-- depends: 0009.qac-models

CREATE OR REPLACE FUNCTION audit_append(p_occurred_at timestamptz[], p_institution text[], p_action text[],
                             p_trace_id text[], p_resource_type text[], p_resource_id text[],
                             p_ip_address inet[], p_user_agent text[], p_metadata jsonb[]) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n      integer := coalesce(cardinality(p_institution), 0);
    ids    bigint[];
    prevs  bytea[] := '{}';
    hashes bytea[] := '{}';
    h      bytea;
    head   bigint;
    ids_of regclass := pg_get_serial_sequence('public.audit_logs', 'id')::regclass;
    at_text text;
    ip_text text;
    md_text text;
BEGIN
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    SELECT last_id, last_hash INTO head, h FROM public.audit_chain_head FOR UPDATE;
    IF h IS NULL THEN
        RAISE EXCEPTION 'the audit chain head is missing: audit rows cannot be chained';
    END IF;
    -- A caller may append inside its own transaction (a write commits its row with its data). If
    -- it then goes quiet holding the head (its process stalled, its network cut before COMMIT),
    -- the server ends it after 5 s instead of letting every instance's audit writes queue behind
    -- it. Local: it ends with this transaction.
    PERFORM set_config('idle_in_transaction_session_timeout', '5s', true);
    SELECT array_agg(v ORDER BY v) INTO ids
    FROM (SELECT nextval(ids_of) AS v FROM generate_series(1, n)) drawn;
    -- Chain order must be id order: a sequence given a cache (each session then draws from its
    -- own range) or set back would break it silently, so refuse instead.
    IF ids[1] <= head THEN
        RAISE EXCEPTION 'audit id % is not after the chain head (%): the id sequence must not be cached or set back',
            ids[1], head;
    END IF;
    FOR i IN 1 .. n LOOP
        prevs[i] := h;
        -- audit_row_hash's encoding, field for field; the three texts that cost most to make are
        -- made once here (inlined, audit_field names its argument three times).
        at_text := ((extract(epoch FROM p_occurred_at[i]) * 1000000::numeric)::bigint)::text;
        ip_text := p_ip_address[i]::text;
        md_text := p_metadata[i]::text;
        h := pg_catalog.sha256(h || public.audit_field(ids[i]::text) || public.audit_field(at_text)
                                 || public.audit_field(p_institution[i]) || public.audit_field(p_action[i])
                                 || public.audit_field(p_trace_id[i]) || public.audit_field(p_resource_type[i])
                                 || public.audit_field(p_resource_id[i]) || public.audit_field(ip_text)
                                 || public.audit_field(p_user_agent[i]) || public.audit_field(md_text));
        hashes[i] := h;
    END LOOP;
    INSERT INTO public.audit_logs (id, occurred_at, institution, action, trace_id, resource_type, resource_id,
                                   ip_address, user_agent, metadata, prev_hash, row_hash) OVERRIDING SYSTEM VALUE
    SELECT * FROM unnest(ids, p_occurred_at, p_institution, p_action, p_trace_id, p_resource_type,
                         p_resource_id, p_ip_address, p_user_agent, p_metadata, prevs, hashes);
    UPDATE public.audit_chain_head SET last_id = ids[n], last_hash = h, updated_at = now();
    RETURN ids[n];
END
$$;
