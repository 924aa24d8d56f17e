"""An HTTPS load generator, run as its own process; prints one JSON line.

  python -m bench.loadgen URL --body FILE --ca CA [--rate 200] [--duration 5] [--connections 8]

--rate R > 0: open loop, R requests per second whatever the answers take; each latency runs from the
moment the request is due (queued for a free keep-alive connection) to the last byte of the answer.
--rate 0: closed loop, every connection sends back to back (saturation).
Plain HTTP/1.1 over asyncio streams (uvloop), so the client costs little of the shared CPU.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import time
import urllib.parse
from pathlib import Path

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None  # type: ignore[assignment]

WARMUP = 0.5  # seconds not recorded at the start
GRACE = 2.0  # seconds after the end in which queued requests are still sent


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length, chunked = 0, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        await _read_chunked(reader)
    else:
        await reader.readexactly(length)
    return status


async def _read_chunked(reader: asyncio.StreamReader) -> None:
    """A chunked body (RFC 9112 7.1): size lines in hex, each chunk then CRLF, a 0 chunk, trailers, CRLF."""
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailer fields, then the empty line
                pass
            return
        await reader.readexactly(size + 2)


async def run(url: str, body: bytes, ca: str, rate: float, duration: float, connections: int) -> dict[str, object]:
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 443
    request = (f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    context = ssl.create_default_context(cafile=ca)
    streams = [await asyncio.open_connection(host, port, ssl=context) for _ in range(connections)]
    latencies: list[float] = []
    errors = sent = dropped = 0
    started = time.perf_counter()
    record_from, end = started + WARMUP, started + WARMUP + duration
    queue: asyncio.Queue[float | None] = asyncio.Queue()

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal errors, sent, dropped
        while True:
            if rate > 0:
                due = await queue.get()
                if due is None:
                    return
                if time.perf_counter() > end + GRACE:  # overloaded: count what is left as dropped
                    dropped += 1
                    continue
            else:
                due = time.perf_counter()
                if due >= end:
                    return
            status = await _exchange(reader, writer, request)
            sent += 1
            if due >= record_from:
                if status == 200:
                    latencies.append(time.perf_counter() - due)
                else:
                    errors += 1

    workers = [asyncio.ensure_future(worker(*stream)) for stream in streams]
    if rate > 0:
        for i in range(int((WARMUP + duration) * rate)):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait(time.perf_counter())
        for _ in workers:
            queue.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - record_from
    for _, writer in streams:
        writer.close()
    latencies.sort()

    def pct(q: float) -> float | None:
        return latencies[min(len(latencies) - 1, int(q / 100 * len(latencies)))] * 1000 if latencies else None

    return {"sent": sent, "ok": len(latencies), "errors": errors, "dropped": dropped, "rate": len(latencies) / elapsed, "p50_ms": pct(50),
            "p90_ms": pct(90), "p99_ms": pct(99), "max_ms": latencies[-1] * 1000 if latencies else None}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--body", type=Path, required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    if not args.url.startswith("https://127.0.0.1:"):
        sys.exit("loadgen: loopback only (https://127.0.0.1:PORT/...)")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop if uvloop else None) as runner:
        result = runner.run(run(args.url, args.body.read_bytes(), args.ca, args.rate, args.duration, args.connections))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
