-- Undoes 0010: audit_append as 0007 created it (same arguments, same hashes; the slower body).

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
    FROM (SELECT nextval(pg_get_serial_sequence('public.audit_logs', 'id')) AS v FROM generate_series(1, n)) drawn;
    -- Chain order must be id order: a sequence given a cache (each session then draws from its
    -- own range) or set back would break it silently, so refuse instead.
    IF ids[1] <= head THEN
        RAISE EXCEPTION 'audit id % is not after the chain head (%): the id sequence must not be cached or set back',
            ids[1], head;
    END IF;
    FOR i IN 1 .. n LOOP
        prevs[i] := h;
        h := public.audit_row_hash(h, ids[i], p_occurred_at[i], p_institution[i], p_action[i], p_trace_id[i],
                                   p_resource_type[i], p_resource_id[i], p_ip_address[i], p_user_agent[i],
                                   p_metadata[i]);
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
