"""HTTP routes only: parse, call the handler, render, count. No decisions here."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from webhook import admission, handler, metrics
from webhook.settings import Settings

log = logging.getLogger("kube_elector.webhook")


def create_app(
    settings: Settings,
    *,
    ready: Callable[[], bool] = lambda: True,
    registry: CollectorRegistry | None = None,
    cert_expiry: Callable[[], float | None] | None = None,
) -> Starlette:
    """`ready` gates /readyz. An admission has no side effect: the answer is all it produces."""
    # Starlette, not FastAPI: the body is read by hand (size and time bounded) and no route has
    # parameters, so FastAPI would only add its import (~120 ms, ~4 MiB of models, per process).
    app = Starlette()
    counters = metrics.Metrics(registry)
    if cert_expiry is not None:
        counters.watch_certificate(cert_expiry)

    # The admissions are bare ASGI apps, not request/response functions: they are the hot path, and
    # Starlette's Request and Response objects cost ~30 us per admission (issue 24, bench/README.md).
    app.add_route("/mutate", Admissions(settings, counters, namespace_opted_in=False), methods=["POST"])
    # Called only for pods in namespaces labelled elector.dev/inject=enabled.
    app.add_route("/mutate/namespace", Admissions(settings, counters, namespace_opted_in=True), methods=["POST"])

    async def healthz(_: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    async def readyz(_: Request) -> Response:
        if ready():
            return Response(b'{"status":"ok"}', media_type="application/json")
        return Response(b'{"status":"certificate not loaded"}', status_code=503, media_type="application/json")

    async def prometheus(_: Request) -> Response:
        return Response(generate_latest(counters.exposition), media_type=CONTENT_TYPE_LATEST)

    app.add_route("/healthz", healthz, methods=["GET"])
    app.add_route("/readyz", readyz, methods=["GET"])
    app.add_route("/metrics", prometheus, methods=["GET"])

    return app


class Admissions:
    """One admission route: read the body (bounded in size and time), call the handler, render, count, log."""

    def __init__(self, settings: Settings, counters: metrics.Metrics, *, namespace_opted_in: bool) -> None:
        self.settings, self.counters, self.namespace_opted_in = settings, counters, namespace_opted_in

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        settings = self.settings
        try:
            async with asyncio.timeout(settings.request_timeout_seconds):
                body = await _read_limited(scope, receive, settings.max_body_bytes)
        except TimeoutError:
            return await self._error(send, 408, f"body not received within {settings.request_timeout_seconds:g} s",
                                     started)
        except _Disconnected:  # gone, or closed by webhook/guard.py to make room: no one to answer
            return await self._error(send, 400, "the client closed the connection before its body was complete",
                                     started)
        if body is None:
            return await self._error(send, 413, f"body larger than {settings.max_body_bytes} bytes", started)
        try:
            review = admission.parse_review(body)
        except admission.BadReview as exc:
            return await self._error(send, 400, str(exc), started)
        outcome = handler.handle(review, namespace_opted_in=self.namespace_opted_in, settings=settings)
        self.counters.observe(outcome.result, time.perf_counter() - started)
        log.info(
            "admission",
            extra={
                "event": "admission", "result": outcome.result, "reason": outcome.reason,
                "namespace": review.namespace, "pod": _pod_name(review.object), "election": outcome.election,
                "uid": review.uid, "dry_run": review.dry_run,
            },
        )
        await _send_json(send, 200, orjson.dumps(outcome.review))

    async def _error(self, send: Send, code: int, message: str, started: float) -> None:
        self.counters.observe("invalid", time.perf_counter() - started)
        log.warning("bad request", extra={"event": "bad_request", "status": code, "error": message})
        await _send_json(send, code, orjson.dumps({"error": message}))


class _Disconnected(Exception):
    """The client went away before its body was complete."""


async def _read_limited(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The body, or None once it exceeds `limit` (never buffers more than that)."""
    declared = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send_json(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _pod_name(pod: Any) -> str | None:
    if isinstance(pod, dict) and isinstance(pod.get("metadata"), dict):
        meta = pod["metadata"]
        return meta.get("name") or meta.get("generateName")
    return None
