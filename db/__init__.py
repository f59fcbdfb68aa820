"""Database access: the pool, the SQL loader, migrations, embedded PostgreSQL, and IO functions."""
