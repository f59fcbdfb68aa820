-- name: count_request
-- returns: row
-- Counts one request against the institution's current UTC hour, atomically, only while it is
-- under the limit ($2). A row back means admitted (with the count so far); no row means over
-- the limit. ON CONFLICT makes concurrent first requests of an hour safe on every instance.
INSERT INTO rate_limit_windows AS w (institution_id, window_start, hits)
VALUES ($1, date_trunc('hour', now(), 'UTC'), 1)
ON CONFLICT (institution_id, window_start) DO UPDATE SET hits = w.hits + 1 WHERE w.hits < $2
RETURNING w.hits, w.window_start
