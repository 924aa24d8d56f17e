"""One election brought to what its pods and Lease call for: the calls, with the decisions made by the
pure modules (rbac, succession, routing, observed). Run by one worker thread of the leading controller.

Per election (namespace, name), while it has pods: its Role and RoleBinding, its Lease, the successor
hints on the Lease, the leader label and the leader EndpointSlice; its Events. With no pod left: delete
what we made. Returns when to look again (a claim expires) or None.
"""
from __future__ import annotations

import dataclasses
import datetime
import logging
import time
from typing import Any, Callable, Optional

from controller import rbac, routing, succession
from controller.kube import Api, KubeError, path
from controller.observed import Seen
from elector.election import events
from webhook import options
from elector.election import lock as locks

__all__ = ["Cached", "Election", "LEADER_LABEL", "LEADER_LABEL_OPTION", "LEADER_SERVICE_OPTION"]

log = logging.getLogger("kube_elector.controller")
LEADER_LABEL = "elector.dev/leader"
LEADER_LABEL_OPTION = options.LEADER_LABEL  # the pod annotations that ask for them (webhook/options.py)
LEADER_SERVICE_OPTION = options.LEADER_SERVICE
LEASES, RBAC, SLICES, EVENTS = "coordination.k8s.io/v1", "rbac.authorization.k8s.io/v1", "discovery.k8s.io/v1", \
    "events.k8s.io/v1"
Obj = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Cached:
    """What the informers hold of one election: its pods, Lease, Role and RoleBinding, and the Lease as
    seen on our clock. Level-triggered: a reconcile makes the cluster match this, whatever happened before."""

    pods: list[Obj]
    lease: Optional[Obj] = None
    role: Optional[Obj] = None
    binding: Optional[Obj] = None
    seen: Optional[Seen] = None

    def empty(self) -> bool:
        return not (self.pods or self.lease or self.role or self.binding)


class Election:
    """What the controller keeps about one election between reconciles (slices routed, Events to write)."""

    def __init__(self, namespace: str, name: str, *, identity: str) -> None:
        self.namespace = namespace
        self.name = name
        self.routed: dict[str, str] = {}  # service -> uid of the pod its slice names ("" = none)
        # Our last write of the Role and the RoleBinding: the informer's copy may not show it yet (an update
        # based on that copy would only earn a 409), as client-go's mutation cache knows.
        self.written: dict[str, Obj] = {}
        self.pending_events: list[events.EventSpec] = []
        self.failed: dict[str, float] = {}  # nominee -> until (monotonic)
        self.correlator = events.Correlator(namespace=namespace, lease=name, instance=identity)

    # ------------------------------------------------------------------ the whole election

    def reconcile(self, api: Api, cached: "Cached", now: float = 0.0,
                  wall: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.timezone.utc),
                  ) -> Optional[float]:
        now = now or time.monotonic()
        pods, lease, seen = cached.pods, cached.lease, cached.seen
        if not pods:
            self._remove(api, cached)
            return None
        role = self._ensure(api, "roles", cached.role, rbac.role(self.namespace, self.name, pods))
        self._ensure(api, "rolebindings", cached.binding,
                     rbac.role_binding(self.namespace, self.name, rbac.service_accounts(pods), role))
        if lease is None:
            lease = self._ensure_lease(api, role)
        if not _ours(lease):
            return None  # another component's Lease of the same name: its candidates may use it, we never write it
        self.failed = {name: until for name, until in self.failed.items() if now < until}
        released_by = {seen.last_holder} if seen is not None and not seen.holder else set()
        self._publish_hints(api, lease, pods, exclude=set(self.failed) | released_by)
        holder = seen.holder if seen is not None and seen.valid(now) else ""
        self._label_leader(api, pods, holder)
        self._route(api, pods, holder, released_recently=seen is not None and not seen.holder
                    and now < seen.expiry())
        self._record_events(api, lease, now, wall())
        if seen is not None and (seen.holder or now < seen.expiry()):
            return seen.expiry() + 0.05
        return None

    # ------------------------------------------------------------------ RBAC and the Lease

    def _ensure(self, api: Api, kind: str, current: Optional[Obj], wanted: Obj) -> Obj:
        """The Role or RoleBinding as `wanted`: created if the cache has none (read back on a 409: the cache
        lags our own writes), replaced if it differs (a 409 there: the next event brings us back)."""
        url = path(RBAC, kind, self.namespace, rbac.role_name(self.name))
        current = _newer(current, self.written.get(kind))
        if current is None:
            try:
                made = api.call("POST", path(RBAC, kind, self.namespace), wanted)
            except KubeError as exc:
                if exc.status != 409:
                    raise
                current = api.call("GET", url)
            else:
                log.info(f"{kind[:-1]} created", extra={"event": f"{kind[:-1]}_created", "namespace": self.namespace,
                                                         "election": self.name})
                self.written[kind] = made
                return made
        if not rbac.differs(current, wanted):
            return current
        body = {**wanted, "metadata": {**wanted["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]}}
        self.written[kind] = api.call("PUT", url, body)
        return self.written[kind]

    def _ensure_lease(self, api: Api, role: Obj) -> Obj:
        url = path(LEASES, "leases", self.namespace, self.name)
        found = api.get(url)
        if found is not None:
            labels = (found.get("metadata") or {}).get("labels") or {}
            if rbac.ELECTION_LABEL in labels or labels.get("app.kubernetes.io/managed-by") != "kube-elector":
                return found  # ours already, or not ours to adopt
            return self._adopt_lease(api, found, role)
        try:
            created = api.call("POST", path(LEASES, "leases", self.namespace), rbac.lease(self.namespace, self.name, role))
        except KubeError as exc:
            if exc.status != 409:
                raise
            return api.call("GET", url)
        log.info("lease created", extra={"event": "lease_created", "namespace": self.namespace, "election": self.name})
        return created

    def _adopt_lease(self, api: Api, lease: Obj, role: Obj) -> Obj:
        """A Lease made by 0.1 electors (no election label, owned by pods): label it and add the Role as owner."""
        meta = lease.get("metadata") or {}
        owners = [r for r in meta.get("ownerReferences") or [] if r.get("kind") != "Role"]
        owners += rbac.lease(self.namespace, self.name, role)["metadata"]["ownerReferences"]
        patch = {"metadata": {"resourceVersion": meta.get("resourceVersion"), "ownerReferences": owners,
                              "labels": {**rbac.MANAGED_BY, rbac.ELECTION_LABEL: self.name}}}
        log.info("lease adopted", extra={"event": "lease_adopted", "namespace": self.namespace, "election": self.name})
        return api.merge_patch(path(LEASES, "leases", self.namespace, self.name), patch)

    def _remove(self, api: Api, cached: "Cached") -> None:
        """The last pod is gone: the Role, and with it (garbage collector) the RoleBinding and the Lease; we
        delete those too, at once. Nothing to do once the caches hold none of them."""
        if cached.role is not None:
            api.delete(path(RBAC, "roles", self.namespace, rbac.role_name(self.name)))
        if cached.binding is not None:
            api.delete(path(RBAC, "rolebindings", self.namespace, rbac.role_name(self.name)))
        if cached.lease is not None and _ours(cached.lease):
            api.delete(path(LEASES, "leases", self.namespace, self.name))
        for service in self.routed:
            api.delete(path(SLICES, "endpointslices", self.namespace, routing.slice_name(service)))
        self.routed = {}
        self.written = {}
        log.info("election removed", extra={"event": "election_removed", "namespace": self.namespace,
                                            "election": self.name})

    # ------------------------------------------------------------------ succession

    def _publish_hints(self, api: Api, lease: Obj, pods: list[Obj], *, exclude: set[str]) -> None:
        """`exclude`: nominees that failed lately, and who just released (it sits out a lease duration)."""
        hints = succession.hints_for(lease, pods, exclude=exclude)
        changes = succession.annotation_patch(lease, hints)
        if not changes:
            return
        meta = lease.get("metadata") or {}
        patch = {"metadata": {"resourceVersion": meta.get("resourceVersion"), "annotations": changes}}
        try:
            api.merge_patch(path(LEASES, "leases", self.namespace, self.name), patch)
        except KubeError as exc:
            if exc.status != 409:  # 409: the Lease moved on; its watch event brings us back here
                raise
            return
        log.info("hints published", extra={"event": "hints_published", "namespace": self.namespace,
                                           "election": self.name, "annotations": changes})

    # ------------------------------------------------------------------ what follows the holder

    def _label_leader(self, api: Api, pods: list[Obj], holder: str) -> None:
        for pod in pods:
            meta = pod.get("metadata") or {}
            if (meta.get("annotations") or {}).get(LEADER_LABEL_OPTION) != "true":
                continue
            wanted = "true" if meta.get("name") == holder and not meta.get("deletionTimestamp") else None
            if (meta.get("labels") or {}).get(LEADER_LABEL) == wanted:
                continue
            try:
                api.merge_patch(path("v1", "pods", self.namespace, meta.get("name", "")),
                                {"metadata": {"labels": {LEADER_LABEL: wanted}}})
            except KubeError as exc:
                if exc.status != 404:
                    raise

    def _route(self, api: Api, pods: list[Obj], holder: str, *, released_recently: bool) -> None:
        services = {str((p.get("metadata") or {}).get("annotations", {}).get(LEADER_SERVICE_OPTION) or "")
                    for p in pods} - {""}
        leader = next((p for p in pods if (p.get("metadata") or {}).get("name") == holder), None)
        ip = str(((leader or {}).get("status") or {}).get("podIP") or "")
        for service in sorted(services):
            if not holder and released_recently:
                continue  # the old leader answers "not the leader" until the next takes the slice over
            target = None
            if leader is not None and ip:
                meta = leader["metadata"]
                target = {"name": meta["name"], "namespace": self.namespace, "uid": meta.get("uid", ""), "ip": ip}
            uid = target["uid"] if target else ""
            if self.routed.get(service) == uid:
                continue
            self._write_slice(api, service, target)
            self.routed[service] = uid

    def _write_slice(self, api: Api, service: str, target: Optional[dict[str, str]]) -> None:
        svc = api.get(path("v1", "services", self.namespace, service))
        if svc is None:
            log.warning("leader service missing", extra={"event": "leader_service_missing",
                                                          "namespace": self.namespace, "service": service})
            return
        try:
            body = routing.slice_for(svc, pod=target)
        except routing.SliceError as exc:
            log.warning("leader service unusable", extra={"event": "leader_service_unusable",
                                                           "namespace": self.namespace, "error": str(exc)})
            return
        body["metadata"]["labels"][rbac.ELECTION_LABEL] = self.name
        url = path(SLICES, "endpointslices", self.namespace, routing.slice_name(service))
        current = api.get(url)
        if current is None:
            api.call("POST", path(SLICES, "endpointslices", self.namespace), body)
        else:
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            api.call("PUT", url, body)
        log.info("leader service routed", extra={"event": "leader_routed", "namespace": self.namespace,
                                                 "service": service, "pod": target["name"] if target else None})

    def _record_events(self, api: Api, lease: Obj, now: float, wall: datetime.datetime) -> None:
        pending, self.pending_events = self.pending_events, []
        uid = str((lease.get("metadata") or {}).get("uid", ""))
        collection = path(EVENTS, "events", self.namespace)
        for spec in pending:
            decision = self.correlator.decide(spec, lease_uid=uid, now=now, wall=wall)
            try:
                if decision.verb == "create":
                    api.call("POST", collection, decision.body)
                elif decision.verb == "patch":
                    api.merge_patch(f"{collection}/{decision.name}", decision.body or {})
            except KubeError as exc:
                if exc.status == 404 and decision.verb == "patch":
                    self.correlator.forget(decision.name)
                log.warning("event failed", extra={"event": "event_failed", "namespace": self.namespace,
                                                   "error": str(exc)})


def _ours(lease: Obj) -> bool:
    """A Lease the controller made or adopted (label elector.dev/election); never write or delete another."""
    return rbac.ELECTION_LABEL in ((lease.get("metadata") or {}).get("labels") or {})


def _newer(cached: Optional[Obj], written: Optional[Obj]) -> Optional[Obj]:
    """The cache's copy, or our own later write of the same object. A deletion the cache shows wins."""
    if cached is None or written is None:
        return cached
    if (cached["metadata"].get("uid") == written["metadata"].get("uid")
            and locks.newer(str(written["metadata"].get("resourceVersion", "")),
                            str(cached["metadata"].get("resourceVersion", "")))):
        return written
    return cached
