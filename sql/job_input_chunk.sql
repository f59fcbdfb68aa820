-- name: job_input_chunk
-- returns: value
-- Chunk $2 of job $1's input (NULL past the last): the worker streams the file one chunk at a time.
SELECT data FROM job_inputs WHERE job_id = $1 AND seq = $2
