"""Bad configuration stops start-up with one clear line and a non-zero exit, never a traceback or a hang."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import ConfigError, Settings
from tests import pg

ROOT = Path(__file__).resolve().parent.parent


def run_app(env_overrides: dict, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "app.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("DATABASE_URL", "mysql://user:pw@host/db", "DATABASE_URL"),
        ("DATABASE_URL", "not a url", "DATABASE_URL"),
        ("PORT", "eighty", "PORT"),
        ("PORT", "70000", "PORT"),
        ("DB_POOL_MAX", "0", "DB_POOL_MAX"),
        ("DB_ACQUIRE_TIMEOUT", "-1", "DB_ACQUIRE_TIMEOUT"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL"),
        ("AUDIT_RETENTION_DAYS", "3650000", "at most 36,500 days"),
    ],
)
def test_a_bad_setting_exits_non_zero_with_one_clear_line(name, value, words):
    result = run_app({name: value}, "serve", timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0]
    assert "Traceback" not in result.stderr
    assert "pw@" not in result.stderr, "a connection string's password is never echoed"


def test_settings_parse_the_environment():
    settings = Settings.from_env({"PORT": "9000", "DB_POOL_MAX": "4", "DB_POOL_MIN": "1", "LOG_LEVEL": "debug"})
    assert (settings.port, settings.pool_max, settings.pool_min, settings.log_level) == (9000, 4, 1, "DEBUG")
    assert settings.embedded
    with pytest.raises(ConfigError, match="DB_POOL_MIN"):
        Settings.from_env({"DB_POOL_MIN": "5", "DB_POOL_MAX": "2"})


def test_an_unreachable_database_exits_after_a_bounded_retry():
    result = run_app(
        {"DATABASE_URL": "postgresql://u:secretpw@127.0.0.1:9/db", "DB_STARTUP_TIMEOUT": "1.5"}, "serve", timeout=30
    )
    assert result.returncode == 1
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "unreachable" in error_lines[0]
    assert "Traceback" not in result.stderr and "secretpw" not in result.stderr


def test_a_database_that_never_answers_exits_saying_it_timed_out():
    # A listener that completes TCP handshakes and never says a word (a stopped server, a blackhole):
    # the connection attempt times out, and a timeout's message is empty.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        result = run_app(
            {
                "DATABASE_URL": f"postgresql://u:secretpw@127.0.0.1:{port}/db",
                "DB_STARTUP_TIMEOUT": "1.5",
                "DB_CONNECT_TIMEOUT": "0.5",
            },
            "serve",
            timeout=30,
        )
    assert result.returncode == 1
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "unreachable" in error and error.endswith("timed out"), error


def test_a_database_without_the_migrations_refuses_to_start(server_url):
    url = pg.create_database(server_url, prefix="don_unmigrated")
    result = run_app({"DATABASE_URL": url}, "serve", timeout=60)
    assert result.returncode == 1
    assert "not applied" in result.stderr and "python app.py migrate" in result.stderr
    assert "Traceback" not in result.stderr
