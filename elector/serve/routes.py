"""The routes: the app's API on localhost (`/`, `/sse`, `/release`) and the probe port (`/healthz`,
`/readyz`, `/metrics`). No election logic here: it reads `LeaderElector.view()` through the `Board`.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Callable, Optional, Union

from elector.kube import apimetrics
from elector.election import loop as election
from elector.serve import httpserver
from elector.ops import metrics as metricses
from elector.ops import procmetrics
from elector.election import timings
from elector.serve import status

__all__ = ["Api"]

HEARTBEAT_SECONDS = 15.0
MAX_WAIT_SECONDS = 600.0
WATCHDOG_TOLERANCE_SECONDS = 20.0  # as kube-controller-manager's leader-election healthz
RELEASE_HEADER = "Elector-Release"  # POST /release must carry `Elector-Release: true` (docs/elector.md)


class Api:
    """The route functions of both ports (`app` on localhost, `probes`), over one elector and one `Board`."""

    def __init__(
        self,
        elector: election.LeaderElector,
        board: status.Board,
        *,
        on_release: Callable[[], None],
        heartbeat: float = HEARTBEAT_SECONDS,
        api_metrics: Optional[apimetrics.ApiMetrics] = None,
    ) -> None:
        self.elector = elector
        self.board = board
        self.on_release = on_release
        self.heartbeat = heartbeat
        self.api_metrics = api_metrics or apimetrics.ApiMetrics()
        self.subscribers = 0

    def _current(self) -> dict[str, object]:
        view = self.elector.view()
        self.board.publish(view)  # a read never shows an older state than the live one
        return self.board.payload(view)

    # ------------------------------------------------------------------ app API (localhost)

    async def app(self, request: httpserver.Request) -> Union[httpserver.Reply, httpserver.Stream]:
        if request.path == "/" and request.method in ("GET", "HEAD"):
            return await self._get(request)
        if request.path == "/sse" and request.method == "GET":
            return self._sse(request)
        if request.path == "/release" and request.method == "POST":
            if request.headers.get(RELEASE_HEADER.lower()) != "true":
                # A browser cannot send a custom header cross-origin without a preflight (which this
                # server never allows), nor can a request forged through an app's URL fetcher (SSRF).
                return httpserver.text_reply(f"POST /release needs the header {RELEASE_HEADER}: true\n", 403)
            self.on_release()
            return httpserver.json_reply({"release": "requested"}, 202)
        if request.path in ("/", "/sse", "/release"):
            return httpserver.text_reply("method not allowed\n", 405)
        return httpserver.text_reply("not found\n", 404)

    async def _get(self, request: httpserver.Request) -> httpserver.Reply:
        body = self._current()
        if "wait" in request.query:
            try:
                wait = min(timings.parse(request.query["wait"]), MAX_WAIT_SECONDS)
                after = int(request.query.get("after", self.board.seq))
            except ValueError:
                return httpserver.text_reply("bad wait or after\n", 400)
            if after == self.board.seq and wait > 0:  # older ids, or ids of an earlier process: answer now
                await self.board.wait(after, wait)
                body = self._current()
        return httpserver.json_reply(body)

    def _sse(self, request: httpserver.Request) -> httpserver.Stream:
        last_id_text = request.headers.get("last-event-id") or request.query.get("last_event_id", "")

        async def stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.subscribers += 1
            gone = asyncio.ensure_future(_until_eof(reader))  # the client went away
            try:
                current = self._current()
                last = int(last_id_text) if last_id_text.isascii() and last_id_text.isdigit() else -1
                if last < 0 or last > self.board.seq:  # no id, or one from an earlier process
                    _send(writer, int(str(current["id"])), current)
                    last = int(str(current["id"]))
                while not gone.done():
                    for event in self.board.since(last):
                        _send(writer, event.id, event.payload)
                        last = event.id
                    await writer.drain()
                    waiter = asyncio.ensure_future(self.board.wait(last, self.heartbeat))
                    await asyncio.wait({waiter, gone}, return_when=asyncio.FIRST_COMPLETED)
                    if not waiter.done():
                        waiter.cancel()
                    elif not waiter.result():
                        writer.write(b": keep-alive\n\n")
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                gone.cancel()
                with contextlib.suppress(BaseException):
                    await gone
                self.subscribers -= 1

        return stream

    # ------------------------------------------------------------------ probes and metrics

    async def probes(self, request: httpserver.Request) -> Union[httpserver.Reply, httpserver.Stream]:
        if request.path in ("/healthz", "/livez"):
            if self.elector.healthy(WATCHDOG_TOLERANCE_SECONDS):
                return httpserver.text_reply("ok\n")
            return httpserver.text_reply("leading without renewing: election loop stuck\n", 500)
        if request.path == "/readyz":
            if self.elector.view().observed:
                return httpserver.text_reply("ok\n")
            return httpserver.text_reply("the Lease has not been read yet\n", 503)
        if request.path == "/metrics":
            return await self.metrics(request)
        return httpserver.text_reply("not found\n", 404)

    async def metrics(self, request: httpserver.Request) -> Union[httpserver.Reply, httpserver.Stream]:
        if request.path != "/metrics":
            return httpserver.text_reply("not found\n", 404)
        view = self.elector.view()
        text = metricses.render(self.elector.metrics, name=self.elector.config.name,
                                is_leader=view.is_leader, has_leader=bool(view.leader))
        text += "\n".join(metricses.family("elector_sse_subscribers", "gauge", "Open SSE streams.",
                                           [({"name": self.elector.config.name}, self.subscribers)])) + "\n"
        text += self.api_metrics.render() + procmetrics.render()
        return httpserver.text_reply(text, content_type="text/plain; version=0.0.4; charset=utf-8")


async def _until_eof(reader: asyncio.StreamReader) -> None:
    """Reads and drops what a stream's client sends (never buffered) until it closes."""
    while await reader.read(4096):
        pass


def _send(writer: asyncio.StreamWriter, event_id: int, payload: dict[str, object]) -> None:
    data = json.dumps(payload, separators=(",", ":"))
    writer.write(f"id: {event_id}\ndata: {data}\n\n".encode())
