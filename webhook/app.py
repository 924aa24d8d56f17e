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
from starlette.requests import ClientDisconnect
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

    async def mutate_opted_in_pod(request: Request) -> Response:
        return await _mutate(request, namespace_opted_in=False)

    async def mutate_in_opted_in_namespace(request: Request) -> Response:
        """Called only for pods in namespaces labelled elector.dev/inject=enabled."""
        return await _mutate(request, namespace_opted_in=True)

    app.add_route("/mutate", mutate_opted_in_pod, methods=["POST"])
    app.add_route("/mutate/namespace", mutate_in_opted_in_namespace, methods=["POST"])

    async def _mutate(request: Request, *, namespace_opted_in: bool) -> Response:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(settings.request_timeout_seconds):
                body = await _read_limited(request, settings.max_body_bytes)
        except TimeoutError:
            return _error(408, f"body not received within {settings.request_timeout_seconds:g} s", counters, started)
        except ClientDisconnect:  # gone, or closed by webhook/guard.py to make room: no one to answer
            return _error(400, "the client closed the connection before its body was complete", counters, started)
        if body is None:
            return _error(413, f"body larger than {settings.max_body_bytes} bytes", counters, started)
        try:
            review = admission.parse_review(body)
        except admission.BadReview as exc:
            return _error(400, str(exc), counters, started)
        outcome = handler.handle(review, namespace_opted_in=namespace_opted_in, settings=settings)
        counters.observe(outcome.result, time.perf_counter() - started)
        log.info(
            "admission",
            extra={
                "event": "admission", "result": outcome.result, "reason": outcome.reason,
                "namespace": review.namespace, "pod": _pod_name(review.object), "election": outcome.election,
                "uid": review.uid, "dry_run": review.dry_run,
            },
        )
        return Response(orjson.dumps(outcome.review), media_type="application/json")

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


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None once it exceeds `limit` (never buffers more than that)."""
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _error(code: int, message: str, counters: metrics.Metrics, started: float) -> Response:
    counters.observe("invalid", time.perf_counter() - started)
    log.warning("bad request", extra={"event": "bad_request", "status": code, "error": message})
    return Response(orjson.dumps({"error": message}), status_code=code, media_type="application/json")


def _pod_name(pod: Any) -> str | None:
    if isinstance(pod, dict) and isinstance(pod.get("metadata"), dict):
        meta = pod["metadata"]
        return meta.get("name") or meta.get("generateName")
    return None
