"""Log lines as JSON objects, for ``recommender serve --log-format json``.

With it every line the server writes is one JSON object, whoever wrote it: uvicorn's
own (start, stop, "Exception in ASGI application"), the service's (warm-up, reloads)
and the request lines of ``api.requests``, so a log collector parses them all the
same way. Each carries ``time``, ``level``, ``logger``, ``pid`` (the worker) and
``message``; a line written while a request is answered carries its ``request_id``; a
request line carries its fields (method, route, path, status, duration, client)
instead of a message; an exception comes as ``exception``, its traceback as one string.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import msgspec

from api.asgi.telemetry import REQUEST_ID

LOG_FORMATS = ("text", "json")
_encode = msgspec.json.Encoder().encode


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,  # which worker, with --workers 2 or more
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        else:
            line["message"] = record.getMessage()
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line.setdefault("request_id", request_id)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return _encode(line).decode()
