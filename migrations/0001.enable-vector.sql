-- Enables pgvector, which the pool's connection init and every vector column need.
CREATE EXTENSION IF NOT EXISTS vector;
