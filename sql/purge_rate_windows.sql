-- name: purge_rate_windows
-- returns: nothing
-- Deletes one bounded batch ($2 rows) of rate-limit windows that started over $1 days ago.
DELETE FROM rate_limit_windows WHERE (institution_id, window_start) IN (
    SELECT institution_id, window_start FROM rate_limit_windows
    WHERE window_start < now() - make_interval(days => $1)
    ORDER BY window_start LIMIT $2
)
