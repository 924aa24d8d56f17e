"""The runner: a scheduler and a kubelet for one fake node, over the real API server.

It watches Pods (in some namespaces, or all), binds the unscheduled ones to its node (POST
pods/binding, as a scheduler would), runs the ones bound to its node (`pod.PodInstance`), and handles
graceful deletion as a kubelet does: a pod with a deletionTimestamp is stopped within its grace period,
its final status is written, and then it is deleted with grace 0.

Why bind instead of running unscheduled pods: the API server deletes an unscheduled pod at once (no
grace period, no deletionTimestamp), so the app-then-sidecar shutdown and the handover it allows would
never be exercised; and a bound pod looks like a real one (`kubectl get pods -o wide` shows the node).
The node is registered as a Node object while the runner runs and deleted when it stops.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import subprocess
import threading
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from podrunner import kube, netns, podspec
from podrunner.images import ImageTable, default_table
from podrunner.pod import MIN_SIDECAR_GRACE, Host, PodInstance
from podrunner.podman import Podman

__all__ = ["PodRunner", "PodView", "ContainerView"]

log = logging.getLogger("podrunner")
NETNS_PREFIX = "podrunner-"


@dataclass(frozen=True)
class ContainerView:
    name: str
    init: bool
    sidecar: bool
    state: str  # waiting | running | terminated
    reason: str
    started: bool
    ready: bool
    restarts: int
    pid: int | None
    log_path: Path


@dataclass(frozen=True)
class PodView:
    """A snapshot of one pod on the runner (safe to keep; it does not change)."""

    namespace: str
    name: str
    uid: str
    phase: str
    netns: str
    dir: Path
    terminating: bool
    containers: dict[str, ContainerView] = field(default_factory=dict)
    times: dict[str, float] = field(default_factory=dict)  # monotonic: seen, sandbox, started:<c>, apps, ...

    def log(self, container: str) -> str:
        try:
            return self.containers[container].log_path.read_text(errors="replace")
        except (KeyError, OSError):
            return ""


def _view(inst: PodInstance) -> PodView:
    containers = {}
    for c in inst.containers:
        status = c.status()
        state = next(iter(status["state"]))
        containers[c.name] = ContainerView(
            name=c.name, init=c.init, sidecar=c.sidecar, state=state,
            reason=str(status["state"][state].get("reason", "")), started=c.started, ready=c.ready,
            restarts=c.restart_count, pid=c.workload_pid if c.alive else None, log_path=c.log_path,
        )
    return PodView(
        namespace=inst.namespace, name=inst.name, uid=inst.uid, phase=inst.phase(), netns=inst.netns.name,
        dir=inst.dir, terminating=inst.stopping.is_set(), containers=containers, times=dict(inst.times),
    )


class PodRunner:
    """Run the pods of some namespaces (None: all) on a local fake node.

    In a program: `with PodRunner(kubeconfig, workdir, namespaces=["demo"]) as runner: ...` (a background
    thread); or `await runner.run(stop_event)` on your own event loop. Containers are local processes
    (images mapped to commands by `images`), or real images with `podman=Podman(...)`.
    """

    def __init__(
        self,
        kubeconfig: Path,
        workdir: Path,
        *,
        namespaces: Sequence[str] | None = None,
        node: str = "podrunner",
        images: ImageTable | None = None,
        stop_grace: float = 10.0,
        release_pods: bool = True,
        podman: Podman | None = None,
    ):
        self.kubeconfig = Path(kubeconfig)
        self.workdir = Path(workdir).resolve()
        self.namespaces = list(namespaces) if namespaces else None
        self.node = node
        self.images = images or default_table()
        self.stop_grace = stop_grace
        self.release_pods = release_pods
        self.podman = podman  # None: containers run as local processes (images mapped by `images`)
        self.instances: dict[str, PodInstance] = {}
        self.finished: dict[str, PodView] = {}  # uid -> last snapshot of each pod stopped (for tests, the demo)
        self._done: set[str] = set()  # uids run to the end: never started again
        self._binding: set[str] = set()
        self._finishing: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.api: kube.Api | None = None

    # ------------------------------------------------------------ thread API

    def start(self, timeout: float = 60.0) -> PodRunner:
        """Run in a background thread; returns once the node is registered and the pods are listed."""
        self._thread = threading.Thread(target=self._thread_main, name="podrunner", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise TimeoutError(f"pod runner not ready within {timeout:.0f} s")
        if self._error is not None:
            raise RuntimeError(f"pod runner failed: {self._error}") from self._error
        atexit.register(self.stop)
        return self

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.run())
        except BaseException as exc:  # noqa: BLE001 - reported to start()/stop()
            self._error = exc
            log.exception("pod runner failed")
        finally:
            self._ready.set()
            loop.close()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop every pod (app containers first), remove the namespaces and the Node. Safe to call twice."""
        atexit.unregister(self.stop)
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._request_stop)
        thread.join(timeout)

    def __enter__(self) -> PodRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, coro: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
        assert self._loop is not None, "not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def pods(self) -> list[PodView]:
        """Snapshots of the pods the runner runs now (sorted by namespace, name)."""

        async def snap() -> list[PodView]:
            return sorted((_view(i) for i in self.instances.values()), key=lambda v: (v.namespace, v.name))

        return self._call(snap())

    def stopped_pods(self) -> list[PodView]:
        """Final snapshots of the pods the runner has stopped (deleted ones included)."""

        async def snap() -> list[PodView]:
            return list(self.finished.values())

        return self._call(snap())

    def http_get(self, pod: PodView, port: int, path: str = "/", *, timeout: float = 1.0) -> tuple[int, bytes]:
        """GET http://localhost:<port><path> inside the pod (its own loopback). Raises OSError when unreachable."""
        return netns.http_get(pod.netns, port, path, timeout=timeout)

    # ------------------------------------------------------------ the loop

    def _request_stop(self) -> None:
        if self._stop_event is not None:
            self._stop_event.set()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Serve until `stop` is set (or `stop()` is called), then stop every pod and clean up."""
        self._stop_event = stop or asyncio.Event()
        self.api = kube.Api(self.kubeconfig)
        tools = podspec.Tools.find()
        await asyncio.to_thread(_remove_stale, tools)
        if self.podman is not None:
            for name in await asyncio.to_thread(self.podman.remove_stale, NETNS_PREFIX):
                log.info("removed stale container %s", name)
        cpu, memory = os.cpu_count() or 1, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        self.host = Host(api=self.api, workdir=self.workdir, node=self.node, images=self.images, tools=tools,
                         netns_prefix=NETNS_PREFIX, node_resources={"cpu": str(cpu), "memory": str(memory)},
                         podman=self.podman)
        self.workdir.mkdir(parents=True, exist_ok=True)
        watchers: list[asyncio.Task[None]] = []
        try:
            await self.api.ensure_node(self.node, cpu=cpu, memory=memory)
            listed = [asyncio.Event() for _ in (self.namespaces or [None])]
            for ns, event in zip(self.namespaces or [None], listed):
                watchers.append(asyncio.ensure_future(self._watch(ns, event)))
            await _any_of([asyncio.ensure_future(asyncio.gather(*(e.wait() for e in listed))), *watchers])
            for task in watchers:
                if task.done():
                    task.result()  # a watcher that died before listing: raise its error
            log.info("pod runner ready: node %s, namespaces %s, workdir %s", self.node,
                     ",".join(self.namespaces) if self.namespaces else "(all)", self.workdir)
            self._ready.set()
            await self._stop_event.wait()
        finally:
            for task in watchers:
                task.cancel()
            await self._stop_all()
            with contextlib.suppress(Exception):
                await self.api.delete_node(self.node)
            await self.api.close()

    async def _watch(self, namespace: str | None, listed: asyncio.Event) -> None:
        path = f"/api/v1/namespaces/{namespace}/pods" if namespace else "/api/v1/pods"
        while True:
            try:
                items, version = await self.api.list(path)  # type: ignore[union-attr]
                self._resync(namespace, items)
                listed.set()
                while True:
                    async for kind, obj in self.api.watch(path, version):  # type: ignore[union-attr]
                        version = obj["metadata"].get("resourceVersion", version)
                        if kind != "BOOKMARK":
                            self._on_pod(kind, obj)
            except kube.Gone:
                continue
            except (httpx.HTTPError, kube.ApiError) as exc:
                if not listed.is_set() and isinstance(exc, kube.ApiError) and exc.status in (401, 403):
                    raise
                log.warning("watch %s: %s; again in 1 s", path, exc)
                await asyncio.sleep(1)

    def _resync(self, namespace: str | None, items: list[dict[str, Any]]) -> None:
        present = {p["metadata"]["uid"] for p in items}
        for uid, inst in list(self.instances.items()):
            if (namespace is None or inst.namespace == namespace) and uid not in present:
                inst.deleted = True
                self._finish(inst, MIN_SIDECAR_GRACE)
        for pod in items:
            self._on_pod("ADDED", pod)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("pod runner task failed: %r", task.exception(), exc_info=task.exception())

    def _on_pod(self, kind: str, pod: dict[str, Any]) -> None:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        uid = meta["uid"]
        if self.namespaces and meta.get("namespace") not in self.namespaces:
            return
        inst = self.instances.get(uid)
        node = spec.get("nodeName")
        if kind == "DELETED":  # gone from the API (a force delete, or our own final delete)
            if inst is not None:
                inst.deleted = True
                self._finish(inst, MIN_SIDECAR_GRACE)
            return
        if meta.get("deletionTimestamp"):
            if inst is not None:
                grace = meta.get("deletionGracePeriodSeconds")
                self._finish(inst, float(inst.grace if grace is None else grace))
            elif node == self.node and uid not in self._done:
                self._done.add(uid)
                self._spawn(self.api.delete_pod(meta["namespace"], meta["name"], uid))  # type: ignore[union-attr]
            return
        if self._stop_event is not None and self._stop_event.is_set():
            return
        if not node:
            if uid not in self._binding:
                self._binding.add(uid)
                self._spawn(self._bind(pod))
            return
        if node != self.node or inst is not None or uid in self._done:
            return
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            self._done.add(uid)
            return
        inst = PodInstance(self.host, pod)
        self.instances[uid] = inst
        self._spawn(self._run(inst))

    async def _bind(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        try:
            if await self.api.bind(meta["namespace"], meta["name"], meta["uid"], self.node):  # type: ignore[union-attr]
                await self.api.event(pod, "Scheduled",  # type: ignore[union-attr]
                                     f"Successfully assigned {meta['namespace']}/{meta['name']} to {self.node}",
                                     source="podrunner-scheduler")
        except (httpx.HTTPError, kube.ApiError) as exc:
            log.warning("bind %s/%s: %s", meta["namespace"], meta["name"], exc)
        finally:
            self._binding.discard(meta["uid"])

    async def _run(self, inst: PodInstance) -> None:
        log.info("%s: starting pod (uid %s)", inst.key, inst.uid)
        try:
            await inst.run()
        except Exception:  # noqa: BLE001
            log.exception("%s: pod failed", inst.key)
            self._finish(inst, MIN_SIDECAR_GRACE)

    def _finish(self, inst: PodInstance, grace: float) -> None:
        """Stop the pod within grace (app first), write its final status, delete it with grace 0."""
        if inst.uid in self._finishing:
            inst.shorten_grace(grace)
            return

        async def finish() -> None:
            started = time.monotonic()
            log.info("%s: stopping pod (grace %.0f s)", inst.key, grace)
            if not inst.deleted:
                inst.emit("Killing", "Stopping the pod's containers")
            await inst.terminate(grace)
            await inst.close()
            if not inst.deleted and (self.release_pods or not self._stopping()):
                await self.api.delete_pod(inst.namespace, inst.name, inst.uid)  # type: ignore[union-attr]
            self._done.add(inst.uid)
            self.finished[inst.uid] = _view(inst)
            self.instances.pop(inst.uid, None)
            log.info("%s: pod stopped in %.1f s", inst.key, time.monotonic() - started)

        task = asyncio.ensure_future(finish())
        self._finishing[inst.uid] = task
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _stopping(self) -> bool:
        return self._stop_event is not None and self._stop_event.is_set()

    async def _stop_all(self) -> None:
        for inst in list(self.instances.values()):
            self._finish(inst, min(inst.grace, self.stop_grace))
        while self._tasks:
            pending = [t for t in self._tasks if not t.done()]
            if not pending:
                break
            await asyncio.wait(pending, timeout=self.stop_grace + 30)
            if all(not t.done() for t in pending):
                break
        for task in list(self._tasks):
            task.cancel()
        # Whatever happened above, leave no namespace behind.
        for inst in list(self.instances.values()):
            await asyncio.to_thread(inst._kill_leftovers)
            await asyncio.to_thread(inst.netns.delete)


async def _any_of(tasks: list[asyncio.Future[Any]]) -> None:
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)


def _remove_stale(tools: podspec.Tools) -> None:
    """Namespaces left by a runner that was killed: SIGKILL what is left in them, then delete them."""
    for name in netns.stale(NETNS_PREFIX):
        done = subprocess.run([tools.ip, "netns", "pids", name], capture_output=True, text=True)
        for pid in done.stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), 9)
        netns.NetNS(name, ip=tools.ip).delete()
        log.info("removed stale network namespace %s", name)
