-- Undoes 0008: the job inputs, then the jobs (any queued or running job is lost with them).
DROP TABLE IF EXISTS job_inputs;
DROP TABLE IF EXISTS jobs;
