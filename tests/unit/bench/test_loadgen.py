"""bench.loadgen reads both answer framings: a server may stream its answer in chunks."""
import asyncio

import pytest

from bench import loadgen


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
    b"HTTP/1.1 201 OK\r\ntransfer-encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n",
])
async def test_each_answer_is_read_to_its_end_and_the_next_one_starts_clean(answer):
    async def serve(reader, writer):
        for _ in range(2):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    statuses = [await loadgen._exchange(reader, writer, request) for _ in range(2)]
    assert statuses == [int(answer[9:12])] * 2
    assert await reader.read() == b""  # nothing of the answers left unread
    writer.close()
    server.close()
