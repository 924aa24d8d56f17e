"""JSON logs, one line per event; `extra=` fields become top-level keys."""

from __future__ import annotations

import datetime
import logging
import sys

import orjson

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, so log pipelines index the `extra=` fields (event, election) without parsing text."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD and v is not None})
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def setup(level: str) -> None:
    """Route every logger, uvicorn's included, through one JSON handler on stderr; access lines only from WARNING up."""
    # Not on a record: the formatter leaves out the caller, thread and process (the logging HOWTO's
    # "Optimization"), and looking them up is a good part of a log call on the admission path.
    logging._srcfile = None  # type: ignore[attr-defined]  # noqa: SLF001
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # uvicorn serves plain TCP and webhook/handshakes.py does the TLS, so its "running on http://" line would
    # mislead; our own "serving" line says where and how.
    logging.getLogger("uvicorn.error").addFilter(lambda record: not str(record.msg).startswith("Uvicorn running on"))
