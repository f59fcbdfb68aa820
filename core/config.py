"""Settings read once from the environment at start-up, typed, and passed down explicitly."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """A setting has a value the service cannot run with."""


@dataclass(frozen=True)
class Settings:
    """Every setting the service reads; `describe()` feeds the README table."""

    database_url: str | None = None
    host: str = "0.0.0.0"
    port: int = 8080
    data_dir: Path = Path(".data")
    pool_min: int = 2
    pool_max: int = 10
    acquire_timeout: float = 2.0
    command_timeout: float = 10.0
    connect_timeout: float = 5.0
    startup_timeout: float = 20.0
    health_timeout: float = 1.0
    request_timeout: float = 5.0
    long_request_timeout: float = 300.0
    max_body_bytes: int = 64 * 1024 * 1024
    max_upload_bytes: int = 2 * 1024 * 1024 * 1024
    log_level: str = "INFO"
    forwarded_allow_ips: str = "127.0.0.1"
    audit_batch_max: int = 500
    token_cache_seconds: float = 5.0
    audit_retention_days: int = 90
    rate_window_retention_days: int = 2
    sentry_dsn: str | None = None
    metrics_token: str | None = None
    job_concurrency: int = 1
    job_lease_seconds: float = 60.0
    job_max_attempts: int = 2
    run_job_worker: bool = True
    qac_max_sync_cells: int = 5000

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        values = {}
        for spec in ENV:
            raw = env.get(spec.name)
            if raw is None or raw == "":
                continue
            values[spec.field] = spec.parse(spec.name, raw)
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        if self.pool_min > self.pool_max:
            raise ConfigError(f"DB_POOL_MIN ({self.pool_min}) is larger than DB_POOL_MAX ({self.pool_max})")
        if self.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError(f"LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, not {self.log_level!r}")

    def runner_options(self) -> dict:
        """The keyword arguments of workers.job_runner.JobRunner, besides the pool and the job types."""
        return {
            "concurrency": self.job_concurrency,
            "lease_seconds": self.job_lease_seconds,
            "acquire_timeout": self.acquire_timeout,
        }

    def pool_options(self) -> dict:
        """The keyword arguments of db.pool.create_pool."""
        return {
            "min_size": self.pool_min,
            "max_size": self.pool_max,
            "command_timeout": self.command_timeout,
            "connect_timeout": self.connect_timeout,
        }

    @property
    def embedded(self) -> bool:
        return self.database_url is None


@dataclass(frozen=True)
class EnvVar:
    name: str
    field: str
    kind: str
    description: str

    def parse(self, name: str, raw: str):
        try:
            return _PARSERS[self.kind](raw.strip())
        except ValueError as exc:
            raise ConfigError(f"{name}={_safe(name, raw)!r} is not valid: {exc}") from None


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be a positive whole number")
    return value


# A retention of a century at most: beyond some thousands of years "now minus the retention" is no
# longer a timestamp PostgreSQL can hold, and the purge would fail instead of keeping everything.
MAX_RETENTION_DAYS = 36_500


def _days(raw: str) -> int:
    value = _positive_int(raw)
    if value > MAX_RETENTION_DAYS:
        raise ValueError(f"must be at most {MAX_RETENTION_DAYS:,} days")
    return value


def _port(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 65535:
        raise ValueError("must be between 1 and 65535")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0 or value == float("inf"):
        raise ValueError("must be a positive number of seconds")
    return value


def _secret(raw: str) -> str:
    # Compared against a header value: no spaces, and long enough not to be guessed.
    if len(raw) < 32 or not raw.isascii() or not raw.isprintable() or " " in raw:
        raise ValueError("must be at least 32 printable ASCII characters without spaces")
    return raw


def _boolean(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _database_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError("must start with postgres:// or postgresql://")
    if not parts.hostname and "host=" not in parts.query:
        raise ValueError("names no host")
    if not parts.path.strip("/"):
        raise ValueError("names no database")
    return raw


_PARSERS = {
    "url": _database_url,
    "str": str,
    "level": str.upper,
    "int": _positive_int,
    "days": _days,
    "port": _port,
    "seconds": _positive_float,
    "path": Path,
    "secret": _secret,
    "bool": _boolean,
}


def _safe(name: str, raw: str) -> str:
    """Never echo a connection string: it holds a password."""
    return "<hidden>" if name in ("DATABASE_URL", "SENTRY_DSN", "METRICS_TOKEN") else raw


ENV: tuple[EnvVar, ...] = (
    EnvVar(
        "DATABASE_URL",
        "database_url",
        "url",
        "PostgreSQL URL (postgres:// or postgresql://); unset = embedded PostgreSQL under DATA_DIR",
    ),
    EnvVar("HOST", "host", "str", "Address to listen on (default 0.0.0.0)"),
    EnvVar("PORT", "port", "port", "Port to listen on (default 8080)"),
    EnvVar("DATA_DIR", "data_dir", "path", "Where the embedded PostgreSQL keeps its data (default ./.data)"),
    EnvVar("DB_POOL_MIN", "pool_min", "int", "Connections the pool keeps open (default 2)"),
    EnvVar("DB_POOL_MAX", "pool_max", "int", "Most connections the pool opens, per process (default 10)"),
    EnvVar(
        "DB_ACQUIRE_TIMEOUT",
        "acquire_timeout",
        "seconds",
        "Longest wait for a pooled connection before 503 (default 2)",
    ),
    EnvVar(
        "DB_COMMAND_TIMEOUT", "command_timeout", "seconds", "Longest a single statement may run before 503 (default 10)"
    ),
    EnvVar("DB_CONNECT_TIMEOUT", "connect_timeout", "seconds", "Longest a new connection may take to open (default 5)"),
    EnvVar(
        "DB_STARTUP_TIMEOUT",
        "startup_timeout",
        "seconds",
        "How long start-up retries an unreachable database, with back-off (default 20)",
    ),
    EnvVar(
        "REQUEST_TIMEOUT",
        "request_timeout",
        "seconds",
        "One deadline for a whole request (auth, quota, handler, audit); after it 503 with Retry-After (default 5)",
    ),
    EnvVar(
        "LONG_REQUEST_TIMEOUT",
        "long_request_timeout",
        "seconds",
        "Deadline of the requests that compute inside: JSON genomics compress and build, QAC fit and apply; "
        "an upload's arrival (default 300)",
    ),
    EnvVar("HEALTH_TIMEOUT", "health_timeout", "seconds", "Bound on the health check's database probe (default 1)"),
    EnvVar(
        "MAX_BODY_BYTES", "max_body_bytes", "int", "Largest request body accepted; larger gets 413 (default 67108864)"
    ),
    EnvVar(
        "MAX_UPLOAD_BYTES",
        "max_upload_bytes",
        "int",
        "Largest multipart .h5ad upload to the genomics build; larger gets 413 before it is read (default 2147483648)",
    ),
    EnvVar("LOG_LEVEL", "log_level", "level", "DEBUG, INFO, WARNING, ERROR or CRITICAL (default INFO)"),
    EnvVar(
        "FORWARDED_ALLOW_IPS",
        "forwarded_allow_ips",
        "str",
        "Proxies whose X-Forwarded-For is trusted for the client IP (default 127.0.0.1; '*' on Render)",
    ),
    EnvVar("AUDIT_BATCH_MAX", "audit_batch_max", "int", "Most audit rows written in one round trip (default 500)"),
    EnvVar(
        "TOKEN_CACHE_SECONDS",
        "token_cache_seconds",
        "seconds",
        "How long a token lookup is cached; bounds how late a revocation takes effect (default 5)",
    ),
    EnvVar(
        "AUDIT_RETENTION_DAYS",
        "audit_retention_days",
        "days",
        "Audit rows older than this are purged by `python app.py purge` (default 90, at most 36,500)",
    ),
    EnvVar(
        "RATE_WINDOW_RETENTION_DAYS",
        "rate_window_retention_days",
        "days",
        "Rate-limit windows older than this are purged (default 2, at most 36,500)",
    ),
    EnvVar(
        "SENTRY_DSN",
        "sentry_dsn",
        "str",
        "Report unhandled errors to Sentry (scrubbed, tagged with the trace id); unset = no reporting (default)",
    ),
    EnvVar(
        "METRICS_TOKEN",
        "metrics_token",
        "secret",
        "Bearer credential of GET /metrics (32+ characters); unset = /metrics answers 404 (default)",
    ),
    EnvVar("JOB_CONCURRENCY", "job_concurrency", "int", "Most background jobs one process runs at once (default 1)"),
    EnvVar(
        "JOB_LEASE_SECONDS",
        "job_lease_seconds",
        "seconds",
        "A running job's lease, renewed every third of it; a job whose worker died is retried after it (default 60)",
    ),
    EnvVar(
        "JOB_MAX_ATTEMPTS",
        "job_max_attempts",
        "int",
        "Attempts a job gets when its worker dies before it is failed with 'worker lost' (default 2)",
    ),
    EnvVar(
        "RUN_JOB_WORKER",
        "run_job_worker",
        "bool",
        "The web process also runs background jobs; false when a separate `python app.py worker` does (default true)",
    ),
    EnvVar(
        "QAC_MAX_SYNC_CELLS",
        "qac_max_sync_cells",
        "int",
        "Most cells a QAC fit or apply computes in the request (sync: true); more must be a job (default 5000)",
    ),
)

assert {spec.field for spec in ENV} == {f.name for f in fields(Settings)}, "every setting needs an environment variable"
