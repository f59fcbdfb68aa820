"""SENTRY_DSN: unset, nothing is imported; set, unhandled errors reach Sentry scrubbed and tagged
with the trace id (a local capture server stands in for Sentry; each check in its own process)."""

from __future__ import annotations

import gzip
import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_without_a_dsn_sentry_is_never_imported():
    out = run(
        "import sys\n"
        "from app import create_app\n"
        "from core import error_reporting\n"
        "from core.config import Settings\n"
        "create_app(Settings(database_url='postgresql://u@localhost/db'))\n"
        "assert error_reporting.configure(None, 'test') is False\n"
        "print('sentry_sdk' in sys.modules)\n"
    )
    assert out.strip() == "False"


class _Capture(http.server.BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self):  # noqa: N802 (the http.server API)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        _Capture.received.append(body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_an_unhandled_error_reaches_sentry_scrubbed_and_tagged():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    secret = "donr_" + "A" * 43 + "_ABCDEF"
    try:
        run(
            "import logging, sentry_sdk\n"
            "from core import error_reporting, logs\n"
            f"assert error_reporting.configure('http://key@127.0.0.1:{server.server_port}/1', 'test')\n"
            "logs.trace_id_var.set('trace-under-test')\n"
            "try:\n"
            f"    raise RuntimeError('failed for {secret}')\n"
            "except RuntimeError:\n"
            "    logging.getLogger('api.audit').exception('unhandled RuntimeError in GET /x')\n"
            "sentry_sdk.flush(10)\n"
        )
    finally:
        server.shutdown()
        server.server_close()
    envelopes = b"\n".join(_Capture.received).decode()
    events = [json.loads(line) for line in envelopes.splitlines() if line.startswith("{") and '"exception"' in line]
    assert events, envelopes[:500]
    assert secret not in envelopes
    assert events[0]["tags"]["trace_id"] == "trace-under-test"
    assert "donr_REDACTED" in json.dumps(events[0]["exception"])


def test_scrub_drops_credentials_bodies_and_query_strings():
    from core.error_reporting import scrub

    event = {
        "request": {
            "headers": {"Authorization": "Bearer x", "Cookie": "s=1", "User-Agent": "ua"},
            "data": '{"secret": 1}',
            "query_string": "token=abc",
            "cookies": {"s": "1"},
        }
    }
    scrubbed = scrub(event)
    assert scrubbed["request"] == {"headers": {"User-Agent": "ua"}}
