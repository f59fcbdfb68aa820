"""render.yaml holds what a Render deploy of this service needs, and the README documents every setting."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from core.config import ENV

ROOT = Path(__file__).resolve().parent.parent


def blueprint() -> dict:
    return yaml.safe_load((ROOT / "render.yaml").read_text())


def service_of(kind: str) -> dict:
    [service] = [s for s in blueprint()["services"] if s["type"] == kind]
    return service


def test_the_web_service_is_complete():
    service = service_of("web")
    assert service["type"] == "web" and service["runtime"] == "python"
    assert service["buildCommand"] == "pip install -r requirements.txt"
    assert service["startCommand"] == "python app.py serve"
    assert service["preDeployCommand"] == "python app.py migrate"
    assert service["healthCheckPath"] == "/api/v1/health/live"
    env = {e["key"]: e for e in service["envVars"]}
    assert re.fullmatch(r"\d+\.\d+\.\d+", env["PYTHON_VERSION"]["value"])
    assert env["FORWARDED_ALLOW_IPS"]["value"] == "*"


def test_the_worker_service_runs_jobs_and_the_web_service_does_not():
    worker, web = service_of("worker"), service_of("web")
    assert worker["runtime"] == "python" and worker["startCommand"] == "python app.py worker"
    assert worker["buildCommand"] == web["buildCommand"]
    web_env = {e["key"]: e.get("value") for e in web["envVars"]}
    worker_env = {e["key"]: e.get("value") for e in worker["envVars"]}
    assert web_env["RUN_JOB_WORKER"] == "false" and worker_env.get("RUN_JOB_WORKER") in (None, "true")
    assert worker_env["PYTHON_VERSION"] == web_env["PYTHON_VERSION"]


def test_database_url_comes_from_the_declared_database():
    doc = blueprint()
    for service in doc["services"]:
        env = {e["key"]: e for e in service["envVars"]}
        source = env["DATABASE_URL"]["fromDatabase"]
        assert source["property"] == "connectionString"
        assert source["name"] in {db["name"] for db in doc["databases"]}
    [database] = doc["databases"]
    assert isinstance(database["postgresMajorVersion"], str)


def test_every_env_var_the_blueprint_sets_is_a_real_setting():
    known = {spec.name for spec in ENV} | {"PYTHON_VERSION"}
    for service in blueprint()["services"]:
        assert {e["key"] for e in service["envVars"]} <= known, service["name"]


def test_the_readme_documents_every_setting_and_command():
    readme = (ROOT / "README.md").read_text()
    for spec in ENV:
        assert f"`{spec.name}`" in readme, spec.name
    for command in (
        "serve",
        "worker",
        "migrate",
        "institution add",
        "institution list",
        "institution disable",
        "token issue",
        "token list",
        "token revoke",
        "purge",
        "make run",
        "make test",
    ):
        assert command in readme, command
