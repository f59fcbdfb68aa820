-- Undoes 0007: the chain's triggers, functions and tables, then the hash columns (rows keep their
-- other columns; a later re-apply starts a new chain after them).
DROP TRIGGER IF EXISTS audit_logs_append_only ON audit_logs;
DROP FUNCTION IF EXISTS audit_purge(integer, integer);
DROP FUNCTION IF EXISTS audit_append(timestamptz[], text[], text[], text[], text[], text[], inet[], text[], jsonb[]);
DROP FUNCTION IF EXISTS audit_row_hash(bytea, bigint, timestamptz, text, text, text, text, text, inet, text, jsonb);
DROP FUNCTION IF EXISTS audit_field(text);
DROP TABLE IF EXISTS audit_checkpoints;
DROP TABLE IF EXISTS audit_chain_head;
DROP FUNCTION IF EXISTS audit_refuse_change();
ALTER TABLE audit_logs DROP CONSTRAINT IF EXISTS audit_logs_chained;
ALTER TABLE audit_logs DROP COLUMN IF EXISTS row_hash, DROP COLUMN IF EXISTS prev_hash;
