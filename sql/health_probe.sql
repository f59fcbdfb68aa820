-- name: health_probe
-- returns: row
-- What the health endpoint reports about the database: server and pgvector versions and the
-- newest applied migration. Reads catalogs only, so it stays cheap under load.
SELECT current_setting('server_version') AS server_version,
       (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS pgvector_version,
       (SELECT migration_id FROM _yoyo_migration ORDER BY applied_at_utc DESC, migration_id DESC LIMIT 1)
           AS schema_version
