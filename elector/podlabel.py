"""Optional: keep `elector.dev/leader=true` on this pod while it leads, and no such label otherwise,
so a Service can select the leader. Needs `pods: patch` (ClusterRole kube-elector-leader-label).
"""
from __future__ import annotations

import asyncio
import logging
import urllib.parse
from typing import Optional

from elector import clock as clocks
from elector import election
from elector import httpclient

__all__ = ["LeaderLabel", "LABEL"]

LABEL = "elector.dev/leader"
logger = logging.getLogger("elector.podlabel")


class LeaderLabel:
    def __init__(self, client: httpclient.Client, *, namespace: str, pod: str, clock: clocks.Clock,
                 retry: float) -> None:
        self.client = client
        self.clock = clock
        self.retry = retry
        self._path = f"/api/v1/namespaces/{urllib.parse.quote(namespace)}/pods/{urllib.parse.quote(pod)}"
        self._want = False
        self._applied: Optional[bool] = None  # unknown at start: clear any stale label
        self._changed = asyncio.Event()
        self._changed.set()

    def on_view(self, view: election.View) -> None:
        if view.is_leader != self._want:
            self._want = view.is_leader
            self._changed.set()

    async def flush(self) -> None:
        """Wait until the label matches the last view (used at shutdown, under a timeout)."""
        while self._applied != self._want:
            await self.clock.sleep(0.05)

    async def run(self) -> None:
        """Reconcile the label until cancelled (retrying failed patches every `retry` seconds)."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            want = self._want
            if want == self._applied:
                continue
            patch = {"metadata": {"labels": {LABEL: "true" if want else None}}}
            try:
                response = await self.client.request("PATCH", self._path, json_body=patch,
                                                     content_type="application/merge-patch+json")
                ok = 200 <= response.status < 300
                detail = f"HTTP {response.status}"
            except httpclient.TransportError as exc:
                ok, detail = False, str(exc)
            if ok:
                self._applied = want
                logger.info("leader label set" if want else "leader label removed")
            else:
                logger.warning("leader label patch failed", extra={"fields": {"error": detail}})
                await self.clock.sleep(self.retry)
                self._changed.set()
