"""Property-based contract test: schemathesis against the real service, a real PostgreSQL and a real token.

The service runs as a subprocess (`python app.py serve` on 127.0.0.1, a free port) because the
suite's async fixtures live on pytest-asyncio's session loop while schemathesis drives its own
synchronous HTTP client; a real socket keeps the two apart and also tests uvicorn's handling.
Every operation in `/openapi.json` gets API_FUZZ_EXAMPLES generated cases (default 200; raise
it for a deeper local run, e.g. `API_FUZZ_EXAMPLES=2000`), positive and negative, each sent
with `Authorization: Bearer <token>`. A case fails on any 5xx, on a status, content type,
header or body the document does not declare, on any error that is not problem+json, and on an
error whose detail shows Python internals (class names, tracebacks).

Random path parameters and project ids name nothing, so almost every such case would stop at a 404
before any body validation or database write. So the fuzzing runs twice: once with everything
random (`test_every_operation_honours_the_document`), and once on resources made through the API
beforehand (`fuzz_resources`: a collection per metric with a few vectors, a genomics project, a
finished upload-build job), with path parameters and `project_id` pinned to them
(`test_operations_on_existing_resources_honour_the_document`, once per metric, once for genomics
and once for jobs; API_FUZZ_PINNED_EXAMPLES cases per operation, default API_FUZZ_EXAMPLES).
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import strategies as st

from tests import pg
from tests.contract_checks import CHECKS
from tests.fuzz_fit import fit_vectors
from tests.fuzz_resources import COLLECTIONS, DICTIONARIES, make_resources, pinned_operations
from tests.live_service import serving

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "200"))
PINNED_EXAMPLES = int(os.environ.get("API_FUZZ_PINNED_EXAMPLES", str(EXAMPLES)))
HOURLY_LIMIT = 1_000_000_000  # the column is an integer; no run comes near it


def _make_token(database_url: str) -> str:
    """A fresh institution with a huge hourly quota and one live token, written straight to the database."""
    return pg.issue_token(database_url, HOURLY_LIMIT, "fuzz")


@pytest.fixture(scope="module")
def live_service(database_url):
    """The real service on 127.0.0.1:<free port>, on the suite's migrated database; stopped afterwards."""
    with serving(database_url, LOG_LEVEL="WARNING", DB_POOL_MIN="1", DB_POOL_MAX="4") as service:
        yield service.base_url


@pytest.fixture(scope="module")
def api_token(database_url) -> str:
    return _make_token(database_url)


def _config(api_token: str, examples: int, **extra) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            # Sent on every case; schemathesis treats it as the operation's credentials, which ignored_auth strips.
            "headers": {"Authorization": f"Bearer {api_token}"},
            "generation": {"max-examples": examples, "mode": "all", "database": "none"},
            # Stateful (link-following) testing is off: these are independent per-operation properties.
            "phases": {"stateful": {"enabled": False}},
            **extra,
        }
    )


@pytest.fixture(scope="module")
def fuzz_resources(live_service, api_token, tmp_path_factory) -> dict[str, str]:
    """What the pinned run works on (tests/fuzz_resources.py), made before either run, so the random
    run's GET /collections and GET /jobs also list real ones."""
    return make_resources(live_service, api_token, tmp_path_factory.mktemp("fuzz-upload"))


@pytest.fixture(scope="module")
def api_schema(live_service, api_token, fuzz_resources):
    """Everything random: path parameters and bodies as the document allows (or, negative, does not)."""
    return schemathesis.openapi.from_url(
        f"{live_service}/openapi.json", config=_config(api_token, EXAMPLES), timeout=10
    )


PINNED_TARGETS = [*COLLECTIONS, "genomics", "jobs", "qac"]


@pytest.fixture(scope="module", params=PINNED_TARGETS)
def pinned_schema(request, live_service, api_token, fuzz_resources):
    """Only the operations `pinned_operations` names, each with its parameters; the rest are turned off
    (the random run covers them)."""
    operations = pinned_operations(request.param, fuzz_resources)
    config = _config(
        api_token,
        PINNED_EXAMPLES,
        dictionaries=DICTIONARIES,
        operations=[
            *({"include-name": label, "parameters": parameters} for label, parameters in operations.items()),
            {"exclude-name": list(operations), "enabled": False},
        ],
    )
    return schemathesis.openapi.from_url(f"{live_service}/openapi.json", config=config, timeout=10)


schema = schemathesis.pytest.from_fixture("api_schema")
pinned = schemathesis.pytest.from_fixture("pinned_schema")


@pytest.fixture(autouse=True)
def _nodeid_for_schemathesis(request):
    # schemathesis 4.32.5's lazy schema reads and rewrites `request.node._nodeid`, which pytest 9
    # no longer has (node ids are `NodeId` objects in `_id`); give it the attribute it expects.
    # Harmless: pytest reports from `nodeid`, so the per-operation labels come from subtests instead.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@schema.parametrize()
def test_every_operation_honours_the_document(case):
    case.call_and_validate(checks=CHECKS, timeout=30)


@pinned.parametrize()
@pinned.given(fit=st.booleans())
def test_operations_on_existing_resources_honour_the_document(case, fit):
    if fit:
        fit_vectors(case)
    case.call_and_validate(checks=CHECKS, timeout=30)
