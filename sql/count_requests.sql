-- name: count_requests
-- returns: rows
-- Counts one batch of requests against each institution's current UTC hour in one statement:
-- $1 institution ids, $2 how many requests each has in the batch, $3 each one's hourly limit.
-- Each institution admits min(n, limit - hits) and gets back its hits before and after, so the
-- caller hands the admitted count out in arrival order. An existing row is locked FOR UPDATE in
-- the subquery (in id order, so two instances' batches never deadlock on each other's rows),
-- which under READ COMMITTED re-reads its latest committed version: `before` is exact however
-- many instances count at once. A missing row is inserted with ON CONFLICT DO NOTHING, so when
-- another instance inserted it first this institution comes back with no row and nothing
-- counted, and the caller runs it again (it then takes the update branch).
WITH wanted AS (
    SELECT institution_id, n, lim
    FROM unnest($1::bigint[], $2::int[], $3::int[]) AS t (institution_id, n, lim)
),
counted AS (
    UPDATE rate_limit_windows AS w
    SET hits = w.hits + least(x.n, greatest(x.lim - cur.hits, 0))
    FROM (SELECT r.institution_id, r.window_start, r.hits
          FROM rate_limit_windows AS r
          WHERE r.institution_id = ANY ($1::bigint[]) AND r.window_start = date_trunc('hour', now(), 'UTC')
          ORDER BY r.institution_id
          FOR UPDATE) AS cur
    JOIN wanted AS x ON x.institution_id = cur.institution_id
    WHERE w.institution_id = cur.institution_id AND w.window_start = cur.window_start
    RETURNING w.institution_id, cur.hits AS before, w.hits AS after, w.window_start
),
opened AS (
    INSERT INTO rate_limit_windows (institution_id, window_start, hits)
    SELECT x.institution_id, date_trunc('hour', now(), 'UTC'), least(x.n, greatest(x.lim, 0))
    FROM wanted AS x
    WHERE NOT EXISTS (SELECT 1 FROM rate_limit_windows AS r
                      WHERE r.institution_id = x.institution_id
                        AND r.window_start = date_trunc('hour', now(), 'UTC'))
    ORDER BY x.institution_id
    ON CONFLICT (institution_id, window_start) DO NOTHING
    RETURNING institution_id, 0 AS before, hits AS after, window_start
)
SELECT institution_id, before, after, window_start FROM counted
UNION ALL
SELECT institution_id, before, after, window_start FROM opened
