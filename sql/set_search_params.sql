-- name: set_search_params
-- returns: row
-- Per-query HNSW settings, local to the current transaction (set_config's third argument is
-- is_local = true, i.e. SET LOCAL): ef_search for the candidate list, iterative scans so a
-- metadata filter does not cut results short, the bound on tuples an iterative scan visits, and
-- custom plans, so the planner sees whether this query has a filter (a cached generic plan made
-- for "filter or no filter" can pick a full scan for both). They end with the transaction, so
-- nothing leaks to the next user of the pooled connection.
SELECT set_config('hnsw.ef_search', $1::text, true) AS ef_search,
       set_config('hnsw.iterative_scan', 'relaxed_order', true) AS iterative_scan,
       set_config('hnsw.max_scan_tuples', $2::text, true) AS max_scan_tuples,
       set_config('plan_cache_mode', 'force_custom_plan', true) AS plan_cache_mode
