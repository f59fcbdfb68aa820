DROP TABLE IF EXISTS api_tokens;
DROP TABLE IF EXISTS institutions;
