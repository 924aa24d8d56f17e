"""The webhook's log lines: JSON, one per event, and none that says something untrue."""

from __future__ import annotations

import json
import logging

from webhook import logs


def test_uvicorns_plain_http_line_is_dropped_and_the_rest_is_json(capsys):
    logs.setup("info")
    try:
        logging.getLogger("uvicorn.error").info("Uvicorn running on %s://%s:%d (Press CTRL+C to quit)",
                                                "http", "0.0.0.0", 8443)
        logging.getLogger("uvicorn.error").info("Started server process [%d]", 7)
    finally:
        logging.getLogger().handlers[:] = []
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["msg"] for line in lines] == ["Started server process [7]"]
    assert lines[0]["logger"] == "uvicorn.error" and lines[0]["level"] == "info"
