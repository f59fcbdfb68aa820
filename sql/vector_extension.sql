-- name: vector_extension
-- returns: row
-- Whether the server can provide pgvector (available) and whether this database has it (installed).
SELECT default_version AS available, installed_version AS installed
FROM pg_available_extensions WHERE name = 'vector'
