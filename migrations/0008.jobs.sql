-- Durable background jobs: one row per job (the API's record of it: institution, progress,
-- result, error, cancel) and the job's uploaded input in ~1 MiB chunks, kept in PostgreSQL
-- because a background worker on another machine does not share the web service's disk.
-- Workers claim queued jobs with FOR UPDATE SKIP LOCKED and hold them by a lease they renew;
-- a job whose lease runs out is requeued (or failed after max_attempts), never left running.
-- depends: 0007.audit-chain
CREATE TABLE jobs (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    institution_id   bigint NOT NULL REFERENCES institutions (id),
    type             text NOT NULL CHECK (type IN ('build', 'qac_fit', 'qac_apply')),
    status           text NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    progress         real NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 1),
    params           jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(params) = 'object'),
    result           jsonb CHECK (result IS NULL OR jsonb_typeof(result) = 'object'),
    error            text CHECK (error IS NULL OR length(error) BETWEEN 1 AND 2000),
    attempts         integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL CHECK (max_attempts BETWEEN 1 AND 100),
    lease_expires_at timestamptz,
    worker           text CHECK (worker IS NULL OR length(worker) BETWEEN 1 AND 200),
    cancel_requested boolean NOT NULL DEFAULT false,
    project_id       text CHECK (project_id IS NULL OR project_id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'),
    trace_id         text NOT NULL CHECK (length(trace_id) BETWEEN 1 AND 128),
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT jobs_attempts_bounded CHECK (attempts >= 0 AND attempts <= max_attempts),
    -- A running job is held by exactly one worker's lease; no other status holds one.
    CONSTRAINT jobs_lease_iff_running
        CHECK ((status = 'running') = (lease_expires_at IS NOT NULL AND worker IS NOT NULL)),
    CONSTRAINT jobs_lease_fields_together CHECK ((lease_expires_at IS NULL) = (worker IS NULL)),
    -- finished_at is set exactly when the job has ended, whatever the outcome.
    CONSTRAINT jobs_finished_iff_ended
        CHECK ((status IN ('succeeded', 'failed', 'cancelled')) = (finished_at IS NOT NULL)),
    CONSTRAINT jobs_queued_not_started CHECK (status <> 'queued' OR started_at IS NULL),
    CONSTRAINT jobs_started_when_run CHECK (status NOT IN ('running', 'succeeded') OR started_at IS NOT NULL),
    CONSTRAINT jobs_result_iff_succeeded CHECK ((status = 'succeeded') = (result IS NOT NULL)),
    CONSTRAINT jobs_error_iff_failed CHECK ((status = 'failed') = (error IS NOT NULL)),
    CONSTRAINT jobs_times_in_order CHECK (
        (started_at IS NULL OR started_at >= created_at)
        AND (finished_at IS NULL OR finished_at >= coalesce(started_at, created_at))
    )
);

-- One institution cannot have two queued or running jobs of one type for the same project
-- (two builds of a project would race to replace it): the API answers the second with 409.
CREATE UNIQUE INDEX jobs_one_active_per_project ON jobs (institution_id, type, project_id)
    WHERE project_id IS NOT NULL AND status IN ('queued', 'running');

-- Claiming: the oldest queued job first.
CREATE INDEX jobs_queued_oldest_first ON jobs (created_at, id) WHERE status = 'queued';

-- Reaping: running jobs whose lease has run out.
CREATE INDEX jobs_running_by_lease ON jobs (lease_expires_at) WHERE status = 'running';

-- Listing: an institution's jobs, newest first, by keyset (created_at, id).
CREATE INDEX jobs_by_institution_newest ON jobs (institution_id, created_at DESC, id DESC);

-- A job's input file, in order; deleted when the job ends (any outcome), and with the job.
CREATE TABLE job_inputs (
    job_id uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq    integer NOT NULL CHECK (seq >= 0),
    data   bytea NOT NULL,
    PRIMARY KEY (job_id, seq)
);
