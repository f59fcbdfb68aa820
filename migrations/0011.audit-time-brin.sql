-- The btree on audit_logs (occurred_at) from 0002 was there for retention purges by age. Since 0007
-- a purge deletes a prefix of the chain in id order (audit_purge reads the oldest rows by primary
-- key), and no statement in sql/ filters on occurred_at without an institution: the audit trail API
-- reads through audit_logs_institution_time, the write check through audit_logs_trace_id. The
-- btree was still maintained by every request's audit INSERT, about 3 % of a 50-row batch's time in
-- the database (72 of 2,799 µs, 12 alternating rounds). A BRIN index takes its place: audit rows
-- arrive in time order, so the table's order follows occurred_at and a DBA's time-range query
-- across institutions ("everything between 02:00 and 03:00") still reads only the pages it needs,
-- while an insert costs the index next to nothing. (PostgreSQL 18 can also skip-scan
-- audit_logs_institution_time for such a query; earlier versions cannot.)
--
-- Both statements run CONCURRENTLY, outside a transaction, so instances still serving keep writing
-- audit rows while the new index is built over a trail of millions of rows (a plain CREATE INDEX
-- would hold every audit write, and with it every response, for the whole build). The new index
-- comes first: the time range is never without one. If the build is interrupted, PostgreSQL leaves
-- an invalid index of that name behind: DROP INDEX CONCURRENTLY audit_logs_occurred_at_brin, then
-- apply again.
-- transactional: false
-- depends: 0010.audit-append-once

CREATE INDEX CONCURRENTLY audit_logs_occurred_at_brin ON audit_logs USING brin (occurred_at);

DROP INDEX CONCURRENTLY audit_logs_occurred_at;
