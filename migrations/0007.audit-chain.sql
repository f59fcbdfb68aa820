-- Tamper evidence for the audit trail: a per-row hash chain in id order. Every row written from
-- now on carries prev_hash (the hash of the row before it) and row_hash = sha256(prev_hash ||
-- the row's canonical encoding, audit_row_hash below). Rows are appended only by audit_append(),
-- which serialises batches on the chain head, and purged only by audit_purge(), which deletes a
-- prefix in id order and records where it ended (audit_checkpoints), so `python app.py audit
-- verify` can recompute the rest from there. Rows written before this migration are not chained:
-- the chain starts after them, and they age out with retention.
-- depends: 0006.genomics-projects

ALTER TABLE audit_logs
    ADD COLUMN prev_hash bytea,
    ADD COLUMN row_hash  bytea;

-- Every row from now on must carry both hashes (older rows are exempt: NOT VALID). A writer that
-- does not chain, such as an instance older than this migration, is refused, and fails closed.
ALTER TABLE audit_logs ADD CONSTRAINT audit_logs_chained
    CHECK (coalesce(octet_length(prev_hash), 0) = 32 AND coalesce(octet_length(row_hash), 0) = 32) NOT VALID;

-- The chain head: the last chained row. One row; audit_append locks it for the rest of its
-- transaction, so batches from every instance are chained one after another.
CREATE TABLE audit_chain_head (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_id    bigint NOT NULL,
    last_hash  bytea NOT NULL CHECK (octet_length(last_hash) = 32),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Where the verifiable chain starts: rows with id <= through_id are gone (purged) or predate the
-- chain, and the first row after through_id must carry through_hash as its prev_hash. The newest
-- row is the one that counts; older rows are the history of every purge batch.
CREATE TABLE audit_checkpoints (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    through_id   bigint NOT NULL,
    through_hash bytea NOT NULL CHECK (octet_length(through_hash) = 32),
    reason       text NOT NULL CHECK (reason IN ('chain start', 'purge')),
    rows_purged  bigint NOT NULL DEFAULT 0 CHECK (rows_purged >= 0),
    cutoff       timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- The chain starts after the rows already there (ALTER TABLE above holds the table's exclusive
-- lock, so none can be added meanwhile), from 32 zero bytes.
INSERT INTO audit_chain_head (last_id, last_hash)
SELECT coalesce(max(id), 0), decode(repeat('00', 32), 'hex') FROM audit_logs;
INSERT INTO audit_checkpoints (through_id, through_hash, reason)
SELECT last_id, last_hash, 'chain start' FROM audit_chain_head;

-- One field of the canonical encoding: its length in bytes (4 bytes, big-endian) and its UTF-8
-- bytes; NULL is length -1 with no bytes. Length prefixes make the encoding unambiguous: no value
-- can pass for the end of one field and the start of the next. (This and audit_row_hash have
-- SQL-standard bodies, resolved once, here; their arguments are typed exactly for the same reason.)
CREATE FUNCTION audit_field(value text) RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE WHEN value IS NULL THEN '\xffffffff'::bytea
            ELSE int4send(length(convert_to(value, 'UTF8'::name))) || convert_to(value, 'UTF8'::name) END;

-- A row's hash: sha256 over the previous row's hash (32 bytes) and the row's columns in this
-- order, each as text that does not depend on session settings: id in decimal, occurred_at as
-- microseconds since the Unix epoch in decimal (not timestamptz::text, which follows TimeZone and
-- DateStyle), inet's text form (with its mask, e.g. 203.0.113.9/32), and jsonb's text form, which
-- is canonical for a given value (keys sorted and deduplicated, fixed spacing).
CREATE FUNCTION audit_row_hash(prev bytea, id bigint, occurred_at timestamptz, institution text, action text,
                               trace_id text, resource_type text, resource_id text, ip_address inet,
                               user_agent text, metadata jsonb) RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE
RETURN sha256(prev || audit_field(id::text)
                   || audit_field(((extract(epoch FROM occurred_at) * 1000000::numeric)::bigint)::text)
                   || audit_field(institution) || audit_field(action) || audit_field(trace_id)
                   || audit_field(resource_type) || audit_field(resource_id) || audit_field(ip_address::text)
                   || audit_field(user_agent) || audit_field(metadata::text));

-- Appends one batch (parallel arrays, one element per row) to the chain; returns the last id.
-- It takes the head's row lock first and keeps it until its transaction ends, and draws the ids
-- while holding it, so chain order is id order and no reader sees a batch without the ones
-- before it. Called as one statement (the group-commit writer), its transaction is that
-- statement: the lock is never held across a client round trip. Called inside a longer
-- transaction (a write that commits its row with its data), it should be that transaction's last
-- statement, as the lock lasts until COMMIT, and the transaction READ COMMITTED (under REPEATABLE
-- READ, FOR UPDATE fails on a head another batch has moved).
-- SECURITY DEFINER: a role allowed to EXECUTE it appends rows without any right to the head or
-- the table itself. Like audit_purge, it searches pg_catalog alone and names this schema's objects
-- in full, so no function or operator defined by a role that may create objects in public (the
-- service may, for its index builds) can stand in for the ones it calls as its owner.
CREATE FUNCTION audit_append(p_occurred_at timestamptz[], p_institution text[], p_action text[],
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

-- Purges one batch: the oldest rows in id order, up to the first one that is still within
-- retention (so what goes is always a prefix of the chain), at most p_batch; records the last
-- purged row's id and hash as the new checkpoint in the same transaction; returns how many went.
-- SECURITY DEFINER, and EXECUTE is revoked from PUBLIC below: only its owner, or a role it is
-- granted to, can purge, and the service's role never deletes audit rows itself.
CREATE FUNCTION audit_purge(p_older_than_days integer, p_batch integer) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cutoff    timestamptz := now() - make_interval(days => p_older_than_days);
    cp        public.audit_checkpoints%ROWTYPE;
    last_id   bigint;
    last_hash bytea;
    purged    bigint;
BEGIN
    -- One purge at a time, so checkpoints only move forward; readers and writers are not blocked.
    LOCK TABLE public.audit_checkpoints IN SHARE ROW EXCLUSIVE MODE;
    SELECT * INTO cp FROM public.audit_checkpoints ORDER BY id DESC LIMIT 1;
    SELECT max(id) INTO last_id FROM (
        SELECT id, bool_and(occurred_at < cutoff) OVER (ORDER BY id) AS all_expired
        FROM (SELECT id, occurred_at FROM public.audit_logs ORDER BY id LIMIT p_batch) oldest
    ) prefix WHERE all_expired;
    IF last_id IS NULL THEN
        RETURN 0;
    END IF;
    SELECT row_hash INTO last_hash FROM public.audit_logs WHERE id = last_id;
    PERFORM set_config('don.audit_purge', 'on', true);  -- lets the append-only trigger below pass
    DELETE FROM public.audit_logs WHERE id <= last_id;
    GET DIAGNOSTICS purged = ROW_COUNT;
    PERFORM set_config('don.audit_purge', 'off', true);
    -- Rows from before the chain have no hash: purging only those leaves the checkpoint where it is.
    INSERT INTO public.audit_checkpoints (through_id, through_hash, reason, rows_purged, cutoff)
    VALUES (greatest(cp.through_id, last_id),
            CASE WHEN last_id > cp.through_id THEN last_hash ELSE cp.through_hash END,
            'purge', purged, cutoff);
    RETURN purged;
END
$$;

REVOKE EXECUTE ON FUNCTION audit_append(timestamptz[], text[], text[], text[], text[], text[], inet[], text[], jsonb[])
    FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION audit_purge(integer, integer) FROM PUBLIC;

-- A guard against accidents, not a security boundary (the grants are; `audit verify` detects
-- what gets past both): UPDATE and TRUNCATE of the trail are refused, and DELETE unless
-- audit_purge() is running. Any session can set don.audit_purge itself, and the tables' owner
-- can disable the trigger; a plain UPDATE or DELETE typed by mistake still stops here.
CREATE FUNCTION audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'audit_logs' AND current_setting('don.audit_purge', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '% on % refused: the audit trail is append-only (rows are purged only by audit_purge())',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_logs_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
