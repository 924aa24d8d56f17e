"""One POST straight into an ASGI app, without a socket: the webhook's whole HTTP layer in process (fast)."""

from __future__ import annotations

from typing import Any


async def post(application: Any, messages: list[Any], *, path: str = "/mutate",
               headers: tuple[tuple[bytes, bytes], ...] = ()) -> tuple[int, dict[bytes, bytes], bytes]:
    """(status, response headers, body). `messages` are what receive() returns, in order; a callable one is
    awaited instead (a client that stalls); after them the client is gone (http.disconnect)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "https",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json"), *headers],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 443)}
    queue, start, chunks = list(messages), {}, []

    async def receive():
        if queue:
            step = queue.pop(0)
            return await step() if callable(step) else step
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await application(scope, receive, send)
    return start["status"], dict(start.get("headers", [])), b"".join(chunks)
