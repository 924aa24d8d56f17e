"""Logging: one line per event, JSON or text, with the pod and the election in every line.

Call sites pass structured fields as `extra={"fields": {...}}`; an error goes in as
`extra={"fields": logs.error_fields(exc)}`, so every error line has its type and a message.
"""
from __future__ import annotations

import datetime
import json
import logging
import sys
from typing import Any

__all__ = ["setup", "error_fields"]


class _Formatter(logging.Formatter):
    def __init__(self, *, fmt: str, context: dict[str, str]) -> None:
        super().__init__()
        self.json = fmt == "json"
        self.context = context

    def format(self, rec: logging.LogRecord) -> str:
        moment = datetime.datetime.fromtimestamp(rec.created, datetime.timezone.utc)
        fields: dict[str, Any] = {
            "time": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": rec.levelname.lower(),
            "msg": rec.getMessage(),
            **self.context,
            **getattr(rec, "fields", {}),
        }
        if rec.exc_info:
            fields["error"] = self.formatException(rec.exc_info).splitlines()[-1]
        if self.json:
            return json.dumps(fields, default=str, separators=(",", ":"))
        head = f'{fields.pop("time")} {fields.pop("level").upper():7} {fields.pop("msg")}'
        return head + "".join(f" {key}={value}" for key, value in fields.items())


def error_fields(exc: BaseException) -> dict[str, str]:
    """`error`: the message, never empty (the type's name when the exception has none, as a timeout);
    `error_type`: the type of the root cause (`TimeoutError`, `ConnectionRefusedError`, `LeaseConflict`)."""
    root = exc
    while root.__cause__ is not None and root.__cause__ is not root:
        root = root.__cause__
    return {"error": str(exc) or type(exc).__name__, "error_type": type(root).__name__}


def setup(*, fmt: str, level: str, pod: str, election: str) -> None:
    """Send all `elector.*` logs to stderr in `fmt` ("json" or "text") at `level`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(fmt=fmt, context={"pod": pod, "election": election}))
    root = logging.getLogger("elector")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
