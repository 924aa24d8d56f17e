"""Every error is logged with its type and a message, also the exceptions that have no message."""
from __future__ import annotations

import asyncio
import json
import logging

import pytest

from elector.kube import httpclient
from elector.serve import httpserver
from elector.election import lock
from elector.ops import logs

pytestmark = pytest.mark.timeout(30)


async def test_a_timed_out_request_names_the_timeout():
    async def silent(request: httpserver.Request) -> httpserver.Reply:
        await asyncio.sleep(5)
        return httpserver.text_reply("late")

    server = await httpserver.serve("127.0.0.1", 0, silent)
    port = server.sockets[0].getsockname()[1]
    client = httpclient.Client(f"http://127.0.0.1:{port}", timeout=0.2)
    with pytest.raises(httpclient.TransportError) as caught:
        await client.request("GET", "/x")
    assert str(caught.value) == "GET /x: TimeoutError"  # was "GET /x: " (nothing after the colon)
    server.close()
    refused = httpclient.Client("http://127.0.0.1:1", timeout=1)
    with pytest.raises(httpclient.TransportError, match=r"^connect 127\.0\.0\.1:1: ConnectionRefusedError: .+"):
        await refused.request("GET", "/")


def test_error_fields_have_the_root_type_and_a_message():
    try:
        try:
            raise asyncio.TimeoutError()
        except asyncio.TimeoutError as exc:
            raise httpclient.TransportError(f"connect h:1: {httpclient.describe(exc)}") from exc
    except httpclient.TransportError as exc:
        wrapped = lock.LockError(str(exc))
        wrapped.__cause__ = exc
    assert logs.error_fields(wrapped) == {"error": "connect h:1: TimeoutError", "error_type": "TimeoutError"}
    assert logs.error_fields(lock.LeaseConflict()) == {"error": "LeaseConflict", "error_type": "LeaseConflict"}


def test_json_and_text_lines_carry_both(capsys):
    for fmt in ("json", "text"):
        logs.setup(fmt=fmt, level="info", pod="p", election="ns/e")
        logging.getLogger("elector.test").warning("renew failed", extra={"fields": logs.error_fields(
            ConnectionResetError(104, "Connection reset by peer"))})
    json_line, text_line = capsys.readouterr().err.strip().splitlines()
    assert json.loads(json_line)["error_type"] == "ConnectionResetError"
    assert json.loads(json_line)["error"] == "[Errno 104] Connection reset by peer"
    assert "error_type=ConnectionResetError" in text_line
