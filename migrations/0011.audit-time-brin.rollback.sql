-- Undoes 0011: the btree on occurred_at as 0002 created it, in place of the BRIN index.

DROP INDEX audit_logs_occurred_at_brin;

CREATE INDEX audit_logs_occurred_at ON audit_logs (occurred_at);
