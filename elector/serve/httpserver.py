"""A minimal asyncio HTTP/1.1 server (stdlib only): keep-alive requests, plus streamed replies for SSE.

A route gets a `Request` and returns a `Reply`, or a `Stream` coroutine function that owns the
connection until it returns (the connection is then closed).
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import urllib.parse
from typing import Any, Awaitable, Callable, Union

__all__ = ["Request", "Reply", "Stream", "Route", "serve", "json_reply", "text_reply"]

logger = logging.getLogger("elector.http")

_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            413: "Payload Too Large", 500: "Internal Server Error", 503: "Service Unavailable"}
_MAX_BODY = 64 * 1024


@dataclasses.dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


Stream = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
Route = Callable[[Request], Awaitable[Union[Reply, Stream]]]


def json_reply(payload: Any, status: int = 200) -> Reply:
    return Reply(status, json.dumps(payload, separators=(",", ":")).encode() + b"\n",
                 "application/json", {"Cache-Control": "no-cache"})


def text_reply(text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> Reply:
    return Reply(status, text.encode(), content_type)


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
    lines.extend(f"{key}: {value}" for key, value in headers.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    line = await reader.readline()
    if not line.strip():
        return None
    try:
        method, target, _version = line.decode("latin-1").split()
    except ValueError as exc:
        raise ValueError(f"bad request line {line!r}") from exc
    headers: dict[str, str] = {}
    while True:
        header = await reader.readline()
        if header in (b"\r\n", b"\n", b""):
            break
        key, _, value = header.decode("latin-1").partition(":")
        headers[key.strip().lower()] = value.strip()
        if len(headers) > 100:
            raise ValueError("too many headers")
    length = int(headers.get("content-length", "0") or 0)
    if length > _MAX_BODY:
        raise ValueError("body too large")
    body = await reader.readexactly(length) if length else b""
    split = urllib.parse.urlsplit(target)
    query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
    return Request(method.upper(), split.path or "/", query, headers, body)


async def serve(host: str, port: int, route: Route) -> asyncio.base_events.Server:
    """Start serving `route` on host:port; returns the started server."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    request = await _read_request(reader)
                except (ValueError, asyncio.IncompleteReadError):
                    writer.write(_head(400, {"Content-Length": "0", "Connection": "close"}))
                    return
                if request is None:
                    return
                try:
                    result = await route(request)
                except Exception:
                    logger.exception("handler failed", extra={"fields": {"path": request.path}})
                    result = text_reply("internal error\n", 500)
                if not isinstance(result, Reply):
                    writer.write(_head(200, {"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                             "Connection": "close", "X-Accel-Buffering": "no"}))
                    await writer.drain()
                    await result(reader, writer)
                    return
                close = request.headers.get("connection", "").lower() == "close"
                headers = {"Content-Type": result.content_type, "Content-Length": str(len(result.body)),
                           **result.headers}
                if close:
                    headers["Connection"] = "close"
                writer.write(_head(result.status, headers) + (b"" if request.method == "HEAD" else result.body))
                await writer.drain()
                if close:
                    return
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    return await asyncio.start_server(handle, host, port, reuse_address=True)
