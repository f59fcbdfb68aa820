-- name: applied_migrations
-- returns: rows
-- The migration ids yoyo has recorded as applied; start-up compares them with migrations/.
SELECT migration_id FROM _yoyo_migration ORDER BY migration_id
