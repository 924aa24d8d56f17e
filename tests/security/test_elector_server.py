"""Attacks on the elector's HTTP server (the probe port is reachable from every pod), in-process.

Each test opens hostile connections and then asserts that a real request (the kubelet's probe) is
still answered and that the hostile ones got their refusal; never a timing.
"""
from __future__ import annotations

import asyncio

import pytest

from elector.serve import httpserver

pytestmark = pytest.mark.timeout(30)

LIMITS = httpserver.Limits(head_timeout=0.5, idle_timeout=5.0, max_connections=12, max_per_ip=6)


async def _route(request: httpserver.Request) -> httpserver.Reply:
    return httpserver.text_reply("ok\n")


@pytest.fixture
async def port():
    server = await httpserver.serve("127.0.0.1", 0, _route, LIMITS)
    yield server.sockets[0].getsockname()[1]
    server.close()


async def _probe(port: int) -> bytes:
    """What the kubelet does: connect, send the whole head at once, read the status line."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


async def _rest(reader: asyncio.StreamReader) -> bytes:
    """All the server still sends; b"" when it closed (or reset) the connection."""
    try:
        return await asyncio.wait_for(reader.read(), 5)
    except ConnectionResetError:
        return b""


async def _status(reader: asyncio.StreamReader) -> bytes:
    return (await asyncio.wait_for(reader.readline(), 5)).split(b" ")[1]


async def test_huge_header_is_431_and_probes_answer(port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
    assert await _status(reader) == b"431"
    writer.close()
    assert (await _probe(port)).startswith(b"HTTP/1.1 200")


async def test_long_request_line_is_431(port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\n\r\n")
    assert await _status(reader) == b"431"
    writer.close()


async def test_oversized_body_is_413_and_chunked_400(port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /release HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n")
    assert await _status(reader) == b"413"
    writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /release HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert await _status(reader) == b"400"
    writer.close()


async def test_slow_head_is_closed_with_408(port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\n")
    for _ in range(20):  # a byte at a time, each well inside any per-read timeout
        await asyncio.sleep(0.05)
        if reader.at_eof() or reader._buffer:  # type: ignore[attr-defined]  # answered: stop sending
            break
        writer.write(b"X")
    assert await _status(reader) == b"408"
    writer.close()


async def test_many_slow_connections_from_one_address_never_lock_out_the_probe(port):
    hostile = []
    for _ in range(3 * LIMITS.max_connections):  # all from 127.0.0.1, as the probe is
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"G")  # a head begun, never finished
        hostile.append((reader, writer))
    await asyncio.sleep(0.05)
    for _ in range(5):
        assert (await _probe(port)).startswith(b"HTTP/1.1 200")
    # the hostile ones were closed to make room (or on their deadline): none still holds a slot
    closed = 0
    for reader, writer in hostile:
        data = await _rest(reader)
        closed += data == b"" or b" 408 " in data
        writer.close()
    assert closed == len(hostile)


async def test_idle_keep_alives_make_room_and_busy_ones_are_refused(port):
    idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(LIMITS.max_per_ip)]
    await asyncio.sleep(0.05)
    assert (await _probe(port)).startswith(b"HTTP/1.1 200")  # took the place of the longest idle
    assert await _rest(idle[0][0]) == b""
    for _, writer in idle:
        writer.close()
