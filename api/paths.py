"""Which paths are special: the one home of the health, public and audit-exempt path rules."""

from __future__ import annotations

API_PREFIX = "/api/v1"
# Probes must always learn the truth: these answer even when their audit row cannot be written.
HEALTH_PATH = "/api/v1/health"
LIVE_PATH = "/api/v1/health/live"
HEALTH_PATHS = frozenset({HEALTH_PATH, LIVE_PATH})
# Outside /api/v1 nothing needs a token (the docs page, its assets, the OpenAPI document);
# inside it only the health paths are open (with a trailing slash too: the router redirects those to
# the path itself, and a probe must not get 401 for it). Every path is audited all the same.
PUBLIC_API_PATHS = HEALTH_PATHS | {path + "/" for path in HEALTH_PATHS}
# Prometheus' scrape: outside /api/v1, so no API token opens it; it checks METRICS_TOKEN itself.
METRICS_PATH = "/metrics"


def needs_token(path: str) -> bool:
    return (path == API_PREFIX or path.startswith(API_PREFIX + "/")) and path not in PUBLIC_API_PATHS


def audit_exempt(path: str) -> bool:
    """True where the response leaves even if its audit row failed (the row is still attempted).
    The metrics scrape is a probe too: it must still answer while the audit trail is down."""
    return path in HEALTH_PATHS or path == METRICS_PATH


# Requests that do heavy work inside the request get LONG_REQUEST_TIMEOUT instead of REQUEST_TIMEOUT.
LONG_RUNNING_PATHS = frozenset(
    {
        "/api/v1/genomics/compress",
        "/api/v1/genomics/vectors/build",
        "/api/v1/quantum/qac/fit",  # sync: true computes here, and a job's body can be 30 MB to read and store
        "/api/v1/quantum/qac/apply",
    }
)


def long_running(path: str) -> bool:
    return path in LONG_RUNNING_PATHS


# Where a multipart/form-data body is an upload, capped by MAX_UPLOAD_BYTES instead of MAX_BODY_BYTES.
UPLOAD_PATHS = frozenset({"/api/v1/genomics/vectors/build"})


def upload_path(path: str) -> bool:
    return path in UPLOAD_PATHS
