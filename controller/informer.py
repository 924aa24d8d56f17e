"""One list-and-watch per kind for the whole cluster (a client-go reflector + store, minimal).

Lists the objects matching a label selector, then watches from the list's resourceVersion; on a watch
that ends it watches again from the last version seen, on "410 Gone" or any failure it lists again
(with backoff after failures). Each change calls `on_change(old, new)` (None for absent) from the
informer's own thread; `objects()` is a consistent copy of the store.
"""
from __future__ import annotations

import logging
import random
import threading
from typing import Any, Callable, Optional

from controller.kube import Api, KubeError

__all__ = ["Informer"]

log = logging.getLogger("kube_elector.controller")
Obj = dict[str, Any]
Key = tuple[str, str]


def key_of(obj: Obj) -> Key:
    """An object's (namespace, name): the informer store's key."""
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace", "")), str(meta.get("name", "")))


class Informer:
    """Reads come from its store, not the API server: `synced` is set once the first list is in."""

    def __init__(self, api: Api, url: str, *, selector: str, kind: str,
                 on_change: Callable[[Optional[Obj], Optional[Obj]], None]) -> None:
        self._api = api
        self._url = url
        self._selector = selector
        self.kind = kind
        self._on_change = on_change
        self._store: dict[Key, Obj] = {}
        self._lock = threading.Lock()
        self.synced = threading.Event()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def objects(self) -> list[Obj]:
        with self._lock:
            return list(self._store.values())

    def get(self, key: Key) -> Optional[Obj]:
        with self._lock:
            return self._store.get(key)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"informer-{self.kind}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                version = self._list()
                failures = 0
                while not self._stop.is_set():
                    version = self._watch(version)
            except KubeError as exc:
                if exc.status == 410:  # our version is too old for the server's watch cache: list again, now
                    log.debug("watch expired", extra={"event": "informer_relist", "kind": self.kind})
                    continue
                failures += 1
                delay = min(30.0, 0.5 * 2 ** min(failures, 6)) * (1 + random.random() / 2)
                log.warning("list/watch failed", extra={"event": "informer_failed", "kind": self.kind,
                                                        "error": str(exc), "retry_s": round(delay, 2)})
                self._stop.wait(delay)

    def _list(self) -> str:
        answer = self._api.call("GET", self._url, query={"labelSelector": self._selector, "limit": "0"})
        fresh = {key_of(obj): obj for obj in answer.get("items") or []}
        with self._lock:
            old, self._store = self._store, fresh
        for key in old.keys() - fresh.keys():
            self._notify(old[key], None)
        for key, obj in fresh.items():
            before = old.get(key)
            if before is None or _version(before) != _version(obj):
                self._notify(before, obj)
        self.synced.set()
        return str((answer.get("metadata") or {}).get("resourceVersion", ""))

    def _watch(self, version: str) -> str:
        """One watch; returns the version to go on from. KubeError(410) when it must list again."""
        query = {"labelSelector": self._selector, "resourceVersion": version,
                 "timeoutSeconds": str(random.randint(240, 300))}
        for event in self._api.watch(self._url, query):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                raise KubeError(int(obj.get("code") or 0), f"watch {self.kind}: {obj.get('message')}")
            version = _version(obj) or version
            if kind == "BOOKMARK":
                continue
            key = key_of(obj)
            with self._lock:
                before = self._store.get(key)
                if kind == "DELETED":
                    self._store.pop(key, None)
                else:
                    self._store[key] = obj
            self._notify(before, None if kind == "DELETED" else obj)
            if self._stop.is_set():
                break
        return version

    def _notify(self, old: Optional[Obj], new: Optional[Obj]) -> None:
        try:
            self._on_change(old, new)
        except Exception:  # a handler's bug must not stop the watch
            log.exception("informer handler failed", extra={"event": "handler_failed", "kind": self.kind})


def _version(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))
