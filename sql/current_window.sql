-- name: current_window
-- returns: row
-- The institution's request count in the current UTC hour (none yet: no row).
SELECT hits, window_start FROM rate_limit_windows
WHERE institution_id = $1 AND window_start = date_trunc('hour', now(), 'UTC')
