"""The controller's runnables, started and stopped as one list (controller-runtime's manager, minimal):
the informers (one watch per kind for the whole cluster: pods, Leases, Roles, RoleBindings, each selected
by the label elector.dev/election), the worker that reconciles one election at a time while this replica
leads, the leadership election and the health server.

The informers run on every replica (a standby is warm); only the leader writes. Handlers only note what
changed and queue the election's key; the worker does the calls.
"""
from __future__ import annotations

import heapq
import logging
import threading
import time
from typing import Any, Optional, Protocol

from controller import legacy, observed, rbac
from controller.informer import Informer
from controller.kube import Api, KubeError, path
from controller.reconcile import Cached, Election

__all__ = ["Manager", "Runnable"]

log = logging.getLogger("kube_elector.controller")
Key = tuple[str, str]
Obj = dict[str, Any]
SWEEP: Key = ("", "")  # not an election: the pass over 0.1's RoleBindings
SWEEP_SECONDS = 60.0


class Runnable(Protocol):
    """What `main` starts in order and stops in reverse: server, manager, leadership."""

    def start(self) -> None: ...
    def stop(self) -> None: ...


def election_key(obj: Obj) -> Optional[Key]:
    """The (namespace, election) an object belongs to, None without the election label: the unit of reconciling."""
    meta = obj.get("metadata") or {}
    name = (meta.get("labels") or {}).get(rbac.ELECTION_LABEL)
    return (str(meta.get("namespace", "")), str(name)) if name else None


class Manager:
    """Informers on every replica, so a standby takes over warm; writes only while `leading()` says so."""

    def __init__(self, api: Api, *, identity: str, leading: Optional[Any] = None) -> None:
        self.api = api
        self.identity = identity
        self._leading = leading or (lambda: True)
        self.pods = Informer(api, path("v1", "pods"), selector=rbac.ELECTION_LABEL, kind="pods",
                             on_change=self._pod_changed)
        self.leases = Informer(api, path("coordination.k8s.io/v1", "leases"), selector=rbac.ELECTION_LABEL,
                               kind="leases", on_change=self._lease_changed)
        # What we made: a Role or RoleBinding deleted or edited by hand is made again at once.
        self.roles = Informer(api, path("rbac.authorization.k8s.io/v1", "roles"), selector=rbac.ELECTION_LABEL,
                              kind="roles", on_change=self._made_changed)
        self.bindings = Informer(api, path("rbac.authorization.k8s.io/v1", "rolebindings"),
                                 selector=rbac.ELECTION_LABEL, kind="rolebindings", on_change=self._made_changed)
        self._informers = (self.pods, self.leases, self.roles, self.bindings)
        self._lock = threading.Lock()
        self._pods: dict[Key, dict[str, Obj]] = {}  # election -> pod name -> pod
        self._leases: dict[Key, Obj] = {}
        self._seen: dict[Key, observed.Seen] = {}
        self._elections: dict[Key, Election] = {}
        self._queue: set[Key] = set()
        self._timers: list[tuple[float, Key]] = []
        self._due: dict[Key, float] = {}  # the one timer that counts per election
        self._failures: dict[Key, int] = {}  # reconciles failed in a row, for the backoff
        self._wake = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name="worker", daemon=True)
        self.reconciles = 0
        self.errors = 0
        self._next_sweep = 0.0  # monotonic: the next pass over 0.1's RoleBindings (legacy.py)

    # ------------------------------------------------------------------ runnables

    def start(self) -> None:
        for informer in self._informers:
            informer.start()
        self._worker.start()

    def stop(self) -> None:
        self._stop.set()
        for informer in self._informers:
            informer.stop()
        with self._wake:
            self._wake.notify_all()

    def synced(self) -> bool:
        return all(informer.synced.is_set() for informer in self._informers)

    def leadership_changed(self, leading: bool) -> None:
        """Newly leading: look at every election (what happened while we were standby)."""
        if leading:
            with self._wake:
                self._queue.update(self._pods.keys() | self._leases.keys())
                self._wake.notify_all()

    # ------------------------------------------------------------------ handlers (informer threads)

    def _pod_changed(self, old: Optional[Obj], new: Optional[Obj]) -> None:
        keys = {k for k in (election_key(old) if old else None, election_key(new) if new else None) if k}
        with self._wake:
            if new is None and old is not None and legacy.injected_by_0_1(old):
                self._next_sweep = min(self._next_sweep, time.monotonic() + 2.0)  # its bindings may go now
            for key in keys:
                pods = self._pods.setdefault(key, {})
                name = str(((new or old) or {}).get("metadata", {}).get("name", ""))
                if new is not None and election_key(new) == key:
                    pods[name] = new
                else:
                    pods.pop(name, None)
                if not pods:
                    self._pods.pop(key, None)
                self._queue.add(key)
            self._wake.notify_all()

    def _lease_changed(self, old: Optional[Obj], new: Optional[Obj]) -> None:
        key = election_key(new or old or {})
        if key is None:
            return
        now = time.monotonic()
        with self._wake:
            if new is None:
                self._leases.pop(key, None)
                self._seen.pop(key, None)
            else:
                self._leases[key] = new
                sighting = observed.sight(self._seen.get(key), new, now)
                self._seen[key] = sighting.seen
                election = self._election(key)
                if sighting.event is not None and self.synced() and self._leading():
                    election.pending_events.append(sighting.event)  # a standby records none, later or now
                if sighting.failed_nominee:
                    election.failed[sighting.failed_nominee] = now + observed.FAILED_NOMINEE_LEASES * max(
                        1.0, sighting.seen.duration or 15.0)
            self._queue.add(key)
            self._wake.notify_all()

    def _made_changed(self, old: Optional[Obj], new: Optional[Obj]) -> None:
        key = election_key(new or old or {})
        if key is not None:
            with self._wake:
                self._queue.add(key)
                self._wake.notify_all()

    def _election(self, key: Key) -> Election:
        if key not in self._elections:
            self._elections[key] = Election(*key, identity=self.identity)
        return self._elections[key]

    # ------------------------------------------------------------------ the worker

    def _next(self) -> Optional[Key]:
        with self._wake:
            while not self._stop.is_set():
                now = time.monotonic()
                while self._timers and self._timers[0][0] <= now:
                    due, key = heapq.heappop(self._timers)
                    if self._due.get(key) == due:
                        del self._due[key]
                        self._queue.add(key)
                if self.synced() and self._leading():
                    if now >= self._next_sweep:
                        self._next_sweep = now + SWEEP_SECONDS
                        return SWEEP
                    if self._queue:
                        return self._queue.pop()
                wait = self._timers[0][0] - now if self._timers else 1.0
                self._wake.wait(min(max(wait, 0.01), 1.0))
        return None

    def _work(self) -> None:
        while (key := self._next()) is not None:
            if key == SWEEP:
                self._sweep()
                continue
            name = rbac.role_name(key[1])
            with self._wake:
                cached = Cached(pods=list(self._pods.get(key, {}).values()), lease=self._leases.get(key),
                                role=self.roles.get((key[0], name)), binding=self.bindings.get((key[0], name)),
                                seen=self._seen.get(key))
                election = self._election(key)
            if cached.empty():
                with self._wake:
                    self._elections.pop(key, None)
                continue
            try:
                again = election.reconcile(self.api, cached)
                self.reconciles += 1
                self._failures.pop(key, None)
            except KubeError as exc:
                if exc.status == 409:  # our copy was stale (the garbage collector pruned an owner): at once again
                    again = time.monotonic() + 0.2
                    log.debug("reconcile conflict", extra={"event": "reconcile_conflict", "namespace": key[0],
                                                           "election": key[1], "error": str(exc)})
                else:
                    again = self._failed(key, str(exc))
            except Exception as exc:  # a bug must cost one election a retry, never the worker
                log.exception("reconcile crashed", extra={"event": "reconcile_crashed", "namespace": key[0],
                                                          "election": key[1]})
                again = self._failed(key, repr(exc))
            with self._wake:
                if again is not None and self._due.get(key, again + 1) > again:
                    self._due[key] = again
                    heapq.heappush(self._timers, (again, key))

    def _failed(self, key: Key, error: str) -> float:
        """Count a failed reconcile; when to try again (backoff: a namespace being deleted answers 403s)."""
        self.errors += 1
        failures = self._failures[key] = self._failures.get(key, 0) + 1
        log.warning("reconcile failed", extra={"event": "reconcile_failed", "namespace": key[0],
                                               "election": key[1], "error": error, "failures": failures})
        return time.monotonic() + min(30.0, 0.5 * 2 ** failures)

    def _sweep(self) -> None:
        try:
            legacy.sweep(self.api, self.pods.objects())
        except Exception as exc:  # KubeError, or a bug: the next sweep comes anyway
            self.errors += 1
            log.warning("0.1 rolebinding sweep failed", extra={"event": "legacy_sweep_failed", "error": repr(exc)})

    def metrics(self) -> str:
        with self._lock:
            elections = len(self._pods)
        return "".join([
            "# TYPE kube_elector_controller_elections gauge\n",
            f"kube_elector_controller_elections {elections}\n",
            "# TYPE kube_elector_controller_reconciles_total counter\n",
            f"kube_elector_controller_reconciles_total {self.reconciles}\n",
            "# TYPE kube_elector_controller_reconcile_errors_total counter\n",
            f"kube_elector_controller_reconcile_errors_total {self.errors}\n",
            "# TYPE kube_elector_controller_leading gauge\n",
            f"kube_elector_controller_leading {int(bool(self._leading()))}\n",
        ])
