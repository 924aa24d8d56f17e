"""The candidates of our election as the API server sees them: a list + watch of the Pods labelled
`elector.dev/election=<election>` in our namespace, kept as `candidates.Candidate`s.

Needs `pods: list, watch` in the namespace (ClusterRole kube-elector-rollout). Without it (HTTP 403)
the elector runs as before, without rollout awareness, and tries again now and then in case the
binding appears (a RoleBinding the webhook made a moment ago may not be in force yet). The view stays
usable while the watch is down: pods do not vanish when the API server restarts, and a relist replaces
the view as a whole.
"""
from __future__ import annotations

import json
import logging
import random
import urllib.parse
from typing import Callable, Optional

from elector import candidates
from elector import clock as clocks
from elector import httpclient
from elector.leaselock import WATCH_SECONDS

__all__ = ["PodWatch", "SELECTOR_LABEL"]

SELECTOR_LABEL = "elector.dev/election"
FORBIDDEN_RETRY_MAX = 60.0  # without RBAC: look again after a retry period, doubling up to this
logger = logging.getLogger("elector.podwatch")


class _Relist(Exception):
    """The watch ended in a way that needs a fresh list (410 Gone, an ERROR event)."""


class PodWatch:
    def __init__(self, client: httpclient.Client, *, namespace: str, election: str, clock: clocks.Clock,
                 retry: float) -> None:
        self.client = client
        self.clock = clock
        self.retry = retry
        self._path = f"/api/v1/namespaces/{urllib.parse.quote(namespace)}/pods"
        self._selector = f"{SELECTOR_LABEL}={election}"
        self._pods: Optional[dict[str, candidates.Candidate]] = None  # None until the first list
        self._listeners: list[Callable[[], object]] = []
        self._forbidden = 0  # 403s in a row

    def view(self) -> Optional[dict[str, candidates.Candidate]]:
        return self._pods

    def add_listener(self, listener: Callable[[], object]) -> None:
        """`listener()` is called after every change of the view."""
        self._listeners.append(listener)

    async def run(self) -> None:
        """List, then watch from the list's resourceVersion; relist when the server ends the watch, and
        after a pause when anything failed. Until cancelled."""
        while True:
            try:
                version = await self._list()
                began = self.clock.now()
                await self._watch(version)
                if self.clock.now() - began > self.retry:
                    continue  # the server's timeout: relist at once (the watch cache serves it)
            except _Relist as exc:
                logger.debug("relisting pods", extra={"fields": {"reason": str(exc)}})
            except httpclient.TransportError as exc:
                logger.debug("pod watch failed", extra={"fields": {"error": str(exc)}})
            except PermissionError:
                self._forbidden += 1
                await self.clock.sleep(min(FORBIDDEN_RETRY_MAX, self.retry * 2 ** (self._forbidden - 1)))
                continue
            await self.clock.sleep(self.retry * (1 + random.random()))

    async def _list(self) -> str:
        query = urllib.parse.urlencode({"labelSelector": self._selector})
        response = await self.client.request("GET", f"{self._path}?{query}")
        if response.status == 403:
            if self._forbidden == 1:  # the second in a row: not a binding still on its way
                logger.warning("cannot list pods: running without rollout awareness (bind ClusterRole "
                               "kube-elector-rollout, or turn it off with --rollout-aware=false)",
                               extra={"fields": {"status": 403}})
            raise PermissionError("pods: list forbidden")
        if response.status != 200:
            raise _Relist(f"list pods: HTTP {response.status}")
        body = response.json()
        pods = {}
        for item in body.get("items") or []:
            pod = candidates.from_pod(item)
            pods[pod.name] = pod
        if self._pods is None:
            logger.info("watching the candidates' pods", extra={"fields": {"pods": len(pods)}})
        self._forbidden = 0
        self._set(pods)
        return str((body.get("metadata") or {}).get("resourceVersion", ""))

    async def _watch(self, version: str) -> None:
        query = urllib.parse.urlencode({
            "labelSelector": self._selector, "watch": "true", "resourceVersion": version,
            "allowWatchBookmarks": "true", "timeoutSeconds": str(random.randint(*WATCH_SECONDS)),
        })
        async for line in self.client.stream_lines(f"{self._path}?{query}", idle_timeout=WATCH_SECONDS[1] + 30):
            try:
                event = json.loads(line)
            except ValueError as exc:
                raise _Relist("bad JSON in the pod watch") from exc
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                raise _Relist(str(obj.get("message", obj)))
            if kind not in ("ADDED", "MODIFIED", "DELETED"):
                continue  # BOOKMARK
            pod = candidates.from_pod(obj)
            pods = dict(self._pods or {})
            if kind == "DELETED":
                pods.pop(pod.name, None)
            else:
                pods[pod.name] = pod
            self._set(pods)

    def _set(self, pods: dict[str, candidates.Candidate]) -> None:
        if pods == self._pods:
            return
        self._pods = pods
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:  # a listener must not break the watch
                logger.exception("pod view listener failed")
