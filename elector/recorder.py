"""Sends the Lease's Events (events.py decides what) on a client of its own, in the background.

Recording never blocks or fails the election: `record()` only queues; a slow or failing API server
delays Events, never a renewal (separate connection). A 403 (the RoleBinding lacks `events`) turns
recording off with one warning. Needs `events.k8s.io` `events: create, patch` in the pod's namespace.
"""
from __future__ import annotations

import asyncio
import logging
import urllib.parse
from typing import Optional

from elector import clock as clocks
from elector import events
from elector import httpclient
from elector import logs
from elector import metrics as metricses

__all__ = ["Recorder"]

logger = logging.getLogger("elector.events")
QUEUE = 64


class Recorder:
    def __init__(self, client: httpclient.Client, *, namespace: str, lease: str, instance: str,
                 clock: clocks.Clock, metrics: metricses.Metrics) -> None:
        self.client = client
        self.clock = clock
        self.metrics = metrics
        self.correlator = events.Correlator(namespace=namespace, lease=lease, instance=instance)
        self._collection = f"/apis/events.k8s.io/v1/namespaces/{urllib.parse.quote(namespace)}/events"
        self._queue: asyncio.Queue[tuple[events.EventSpec, str]] = asyncio.Queue(QUEUE)
        self._idle = asyncio.Event()
        self._idle.set()
        self.enabled = True

    def record(self, spec: events.EventSpec, *, lease_uid: str) -> None:
        """Queue an Event about the Lease (dropped, and counted, if the queue is full or recording is off)."""
        if not self.enabled:
            return
        try:
            self._queue.put_nowait((spec, lease_uid))
            self._idle.clear()
        except asyncio.QueueFull:
            self.metrics.count_event("dropped")

    async def flush(self) -> None:
        """Wait until every queued Event was sent or given up (call under a timeout)."""
        await self._idle.wait()

    async def run(self) -> None:
        while True:
            spec, lease_uid = await self._queue.get()
            await self._send(spec, lease_uid)
            if self._queue.empty():
                self._idle.set()

    async def _send(self, spec: events.EventSpec, lease_uid: str) -> None:
        decision = self.correlator.decide(spec, lease_uid=lease_uid, now=self.clock.now(), wall=self.clock.wall())
        if decision.verb == "drop":
            self.metrics.count_event("dropped")
            return
        status = await self._write(decision)
        if status == 404 and decision.verb == "patch":  # the Event expired (TTL): a new one, as client-go does
            self.correlator.forget(decision.name)
            decision = self.correlator.decide(spec, lease_uid=lease_uid, now=self.clock.now(), wall=self.clock.wall())
            status = await self._write(decision) if decision.verb != "drop" else None
        if status is not None and 200 <= status < 300:
            self.metrics.count_event("created" if decision.verb == "create" else "patched")
            return
        self.metrics.count_event("failed")
        if status == 403:
            self.enabled = False
            logger.warning("cannot record Events (HTTP 403): Events are off; grant events.k8s.io events "
                           "create and patch (manifests/rbac-election.yaml)")

    async def _write(self, decision: events.Decision) -> Optional[int]:
        """The HTTP status of the write, or None if it failed below HTTP (logged)."""
        try:
            if decision.verb == "create":
                response = await self.client.request("POST", self._collection, json_body=decision.body)
            else:
                response = await self.client.request("PATCH", f"{self._collection}/{urllib.parse.quote(decision.name)}",
                                                     json_body=decision.body,
                                                     content_type="application/merge-patch+json")
        except httpclient.TransportError as exc:
            logger.warning("recording an Event failed", extra={"fields": logs.error_fields(exc)})
            return None
        if not 200 <= response.status < 300 and response.status not in (403, 404):
            logger.warning("recording an Event failed", extra={"fields": {
                "error": f"{decision.verb} event: HTTP {response.status}: {response.body[:200]!r}",
                "error_type": f"HTTP {response.status}"}})
        return response.status
