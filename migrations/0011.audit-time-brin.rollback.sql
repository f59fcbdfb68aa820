-- Undoes 0011: the btree on occurred_at as 0002 created it, in place of the BRIN index. Like 0011
-- (whose transactional: false covers its rollback too), concurrently and outside a transaction,
-- the btree built before the BRIN index goes. yoyo pairs each statement here with the one of 0011
-- it undoes, the last with the first.

CREATE INDEX CONCURRENTLY audit_logs_occurred_at ON audit_logs (occurred_at);

DROP INDEX CONCURRENTLY audit_logs_occurred_at_brin;
