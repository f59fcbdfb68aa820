-- name: audit_chain_state
-- returns: row
-- Where `audit verify` starts and ends: the newest checkpoint (rows through its id are purged
-- or predate the chain; the next row must chain from its hash), where the chain started, the
-- chain head (the last row appended), the lowest id of any row that should have been purged
-- (one inserted into the purged prefix) and how many rows from before the chain are left.
WITH latest AS (SELECT through_id, through_hash, reason, created_at FROM audit_checkpoints ORDER BY id DESC LIMIT 1),
     origin AS (SELECT through_id FROM audit_checkpoints WHERE reason = 'chain start' ORDER BY id LIMIT 1)
SELECT latest.through_id, latest.through_hash, latest.reason, latest.created_at AS checkpoint_at,
       origin.through_id AS chain_start_id, head.last_id AS head_id, head.last_hash AS head_hash,
       (SELECT min(id) FROM audit_logs WHERE id > origin.through_id AND id <= latest.through_id) AS inside_prefix,
       (SELECT count(*) FROM audit_logs WHERE id <= origin.through_id) AS unchained
FROM latest, origin, audit_chain_head head
