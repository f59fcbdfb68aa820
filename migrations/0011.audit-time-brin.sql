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
-- Both statements lock audit_logs while they run (audit writes wait); building a BRIN index reads
-- the table once, seconds for millions of rows.
-- depends: 0010.audit-append-once

DROP INDEX audit_logs_occurred_at;

CREATE INDEX audit_logs_occurred_at_brin ON audit_logs USING brin (occurred_at);
