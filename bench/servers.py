"""HTTPS servers for the webhook benchmark, run as their own process.

  python -m bench.servers canned  --port P --cert C --key K --canned DIR
      The baseline: a bare ASGI app on the webhook's uvicorn+TLS stack that reads the body and answers
      POST /mutate/<name> with DIR/<name>.json (the real webhook's answer, precomputed): no parsing,
      no injection, no framework. The stack's own limit.
  python -m bench.servers webhook --port P --cert C --key K [--loop asyncio] [--http h11] [--workers 2]
                                  [--json stdlib] [--log-level warning] [--gc-freeze]
      The real webhook app (webhook.app.create_app) under uvicorn settings the shipped
      `python -m webhook` does not expose, to see what each setting changes.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import socket
import sys
import types
from pathlib import Path
from typing import Any

import uvicorn

from webhook import tls


def canned_app(directory: Path) -> Any:
    answers = {f"/mutate/{p.stem}": p.read_bytes() for p in directory.glob("*.json")}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:  # read the whole body, as any webhook must
            message = await receive()
            more = message.get("more_body", False)
        body = answers.get(scope["path"], b'{"status":"ok"}')
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return app


def stdlib_json() -> None:
    """Swap orjson for the standard library's json in the webhook's modules (the 'no orjson' variant)."""
    from webhook import admission, app as webapp, logs

    shim = types.SimpleNamespace(
        loads=json.loads, JSONDecodeError=json.JSONDecodeError,
        dumps=lambda obj, default=None: json.dumps(obj, default=default, separators=(",", ":")).encode())
    for module in (admission, webapp, logs):
        module.orjson = shim  # type: ignore[attr-defined]


def webhook_app(args: argparse.Namespace) -> Any:
    import webhook.__main__  # noqa: F401 (the same modules, so the same heap, as `python -m webhook`)
    from webhook import app as webapp, logs, settings

    if args.json == "stdlib":
        stdlib_json()
    cfg = settings.load(["--cert-mode", "files", "--log-level", args.log_level])
    logs.setup(cfg.log_level)
    app = webapp.create_app(cfg)
    if args.gc_freeze:  # start-up objects leave the collector's view: no full collection walks them again
        gc.collect()
        gc.freeze()
    return app


def serve(app: Any, args: argparse.Namespace) -> None:
    ctx = tls.server_context()
    ctx.load_cert_chain(args.cert, args.key)
    config = uvicorn.Config(app, log_config=None, access_log=False, loop=args.loop, http=args.http,
                            ssl_context_factory=lambda _config, _default: ctx,
                            timeout_keep_alive=30, limit_concurrency=1000)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.set_inheritable(True)
    if args.workers == 1:
        uvicorn.Server(config).run(sockets=[sock])
        return
    # Workers share the listening socket, as with uvicorn --workers; this parent only supervises.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    children = []
    for _ in range(args.workers):
        pid = os.fork()
        if pid == 0:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
            uvicorn.Server(config).run(sockets=[sock])
            os._exit(0)
        children.append(pid)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    for pid in children:
        os.kill(pid, signal.SIGTERM)
    for pid in children:
        os.waitpid(pid, 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["canned", "webhook"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--canned", type=Path)
    parser.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"])
    parser.add_argument("--http", default="httptools", choices=["httptools", "h11"])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--json", default="orjson", choices=["orjson", "stdlib"])
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--gc-freeze", action="store_true")
    args = parser.parse_args()
    serve(canned_app(args.canned) if args.kind == "canned" else webhook_app(args), args)


if __name__ == "__main__":
    sys.exit(main())
