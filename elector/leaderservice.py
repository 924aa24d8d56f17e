"""Optional: route a Service to the leader only, by writing its endpoints (--leader-service NAME).

The Service has no selector; its one EndpointSlice, `<service>-leader`, is ours. When this pod's
term begins it points the slice at this pod (its IP and the Service's target ports). When a term
ends the slice stays as it is until the next leader takes it over in one update: meanwhile this
pod answers, and the app says it is not the leader (an empty slice would refuse connections, and
a second update would wait for kube-proxy's minimum sync period, 1 s by default). Only when the
pod shuts down and no successor has taken the slice within a moment does it empty the slice, so
that it never names a pod that is gone. kube-proxy follows the slice directly: no label, no
EndpointSlice controller in between (what Patroni does with the Endpoints of its primary's Service). Needs `services: get` and `endpointslices: get, create,
update` in the pod's namespace (ClusterRole kube-elector-leader-service).

`slice_for` and `names_pod` are pure; `LeaderService` only does the calls.
"""
from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from typing import Any, Optional

from elector import clock as clocks
from elector import election
from elector import httpclient

__all__ = ["LeaderService", "slice_for", "names_pod", "SliceError", "MANAGED_BY"]

MANAGED_BY = "kube-elector.dev"
logger = logging.getLogger("elector.leaderservice")


class SliceError(Exception):
    """The Service cannot be routed to the leader (missing, has a selector, or a named targetPort)."""


def slice_name(service: str) -> str:
    return f"{service}-leader"[:253]


def slice_for(service: dict[str, Any], *, pod: Optional[dict[str, str]]) -> dict[str, Any]:
    """The EndpointSlice of `service` naming `pod` ({name, namespace, uid, ip}), or no endpoint at all.

    Raises SliceError when the Service has a selector (its own controller writes its endpoints) or
    a target port that is not a number (the slice names ports, the elector cannot see containers').
    """
    meta, spec = service.get("metadata", {}), service.get("spec", {})
    if spec.get("selector"):
        raise SliceError(f"Service {meta.get('name')} has a selector: remove it, the leader writes its endpoints")
    ports = []
    for port in spec.get("ports") or []:
        target = port.get("targetPort", port.get("port"))
        if not isinstance(target, int):
            raise SliceError(f"Service {meta.get('name')} port {port.get('name') or port.get('port')}: targetPort "
                             f"{target!r} must be a number")
        ports.append({"name": port.get("name", ""), "port": target, "protocol": port.get("protocol", "TCP")})
    endpoints = []
    if pod is not None:
        endpoints.append({
            "addresses": [pod["ip"]],
            "conditions": {"ready": True, "serving": True, "terminating": False},
            "targetRef": {"kind": "Pod", "name": pod["name"], "namespace": pod["namespace"], "uid": pod["uid"]},
        })
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": slice_name(meta.get("name", "")),
            "namespace": meta.get("namespace"),
            "labels": {"kubernetes.io/service-name": meta.get("name"),
                       "endpointslice.kubernetes.io/managed-by": MANAGED_BY},
            # Deleted with its Service.
            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": meta.get("name"),
                                 "uid": meta.get("uid")}],
        },
        "addressType": "IPv6" if pod is not None and ":" in pod["ip"] else "IPv4",
        "endpoints": endpoints,
        "ports": ports,
    }


def names_pod(endpoint_slice: dict[str, Any], uid: str) -> bool:
    """Whether the slice routes to the pod with this uid."""
    return any((e.get("targetRef") or {}).get("uid") == uid for e in endpoint_slice.get("endpoints") or [])


class LeaderService:
    def __init__(self, client: httpclient.Client, *, namespace: str, service: str, pod: dict[str, str],
                 clock: clocks.Clock, retry: float) -> None:
        self.client = client
        self.clock = clock
        self.retry = retry
        self.pod = pod  # name, namespace, uid, ip
        ns = urllib.parse.quote(namespace)
        self._service_path = f"/api/v1/namespaces/{ns}/services/{urllib.parse.quote(service)}"
        self._slices = f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices"
        self._slice_path = f"{self._slices}/{urllib.parse.quote(slice_name(service))}"
        self._term: Optional[str] = None  # the fencing token of the term to route here
        self._routed_term: Optional[str] = None  # the last term whose routing succeeded
        self._changed = asyncio.Event()

    def on_view(self, view: election.View) -> None:
        """Each term of ours (told apart by its fencing token) routes the slice here once."""
        if view.is_leader and view.fencing_token != self._routed_term:
            self._term = view.fencing_token
            self._changed.set()

    async def run(self) -> None:
        """Point the slice here at the start of each term, until cancelled (retrying every `retry` s)."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            term = self._term
            if term == self._routed_term:
                continue
            try:
                await self._apply(True)
                self._routed_term = term
                logger.info("leader service routed here", extra={"fields": {"fencing_token": term}})
            except (SliceError, _CallError, httpclient.TransportError) as exc:
                self._failed(exc)
                await self.clock.sleep(self.retry)
                self._changed.set()

    async def hand_over(self, wait: float) -> None:
        """At shutdown, after the release: give a successor `wait` s to take the slice, then empty it if
        it still names this pod."""
        deadline = self.clock.now() + wait
        while True:
            try:
                status, current = await self._call("GET", self._slice_path, ok=(200, 404))
                if status == 404 or not names_pod(current, self.pod["uid"]):
                    return
                if self.clock.now() >= deadline:
                    await self._apply(False)
                    logger.info("leader service emptied: no successor took it over")
                    return
            except (SliceError, _CallError, httpclient.TransportError) as exc:
                self._failed(exc)
                return
            await self.clock.sleep(0.05)

    def _failed(self, exc: Exception) -> None:
        logger.warning("leader service update failed",
                       extra={"fields": {"error_type": type(exc).__name__, "error": str(exc)}})

    async def _apply(self, leading: bool, attempts: int = 3) -> None:
        """Route the slice here (leading) or empty it if it names us; a conflict (someone else wrote
        it since we read it) is re-read and retried at once: this is the handover's critical path."""
        for attempt in range(attempts):
            try:
                return await self._apply_once(leading)
            except _Conflict:
                if attempt == attempts - 1:
                    raise

    async def _apply_once(self, leading: bool) -> None:
        status, current = await self._call("GET", self._slice_path, ok=(200, 404))
        if not leading and (status == 404 or not names_pod(current, self.pod["uid"])):
            return  # another leader's slice, or none: nothing of ours to clear
        _, service = await self._call("GET", self._service_path)
        body = slice_for(service, pod=self.pod if leading else None)
        if status == 404:
            await self._call("POST", self._slices, body)
        else:
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            await self._call("PUT", self._slice_path, body)  # 409 if it changed since: retried

    async def _call(self, method: str, path: str, body: Any = None,
                    ok: tuple[int, ...] = (200, 201)) -> tuple[int, dict[str, Any]]:
        response = await self.client.request(method, path, json_body=body)
        if response.status == 409:
            raise _Conflict(f"{method} {path}: HTTP 409")
        if response.status not in ok:
            raise _CallError(f"{method} {path}: HTTP {response.status} {response.body[:200]!r}")
        return response.status, (json.loads(response.body) if response.body else {})


class _CallError(Exception):
    """An API call answered with an unexpected status."""


class _Conflict(_CallError):
    """The slice changed (or appeared) since we read it."""
