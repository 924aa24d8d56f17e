"""One pod on the runner: its sandbox (netns, relay, volumes), its containers, probes and status.

Lifecycle, as a kubelet does it:
  setup: volumes (ConfigMaps, Secrets, downward API, a pod-bound token from TokenRequest), a network
         namespace with loopback up, the API server relay inside it;
  init containers in order: a regular one must exit 0; a native sidecar (restartPolicy: Always) must
         pass its startupProbe before the next one starts;
  app containers together, each restarted per the pod's restartPolicy (sidecars always);
  terminate: SIGTERM to the app containers, then (once they are gone) the sidecars in reverse order,
         SIGKILL at the grace deadline; then the namespace and every process left in it go.
Status changes are coalesced and merge-patched to the pod's status subresource.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podrunner import kube, netns, podspec
from podrunner.images import ImageTable, LocalImage
from podrunner.podman import Podman, podman_argv

__all__ = ["Host", "PodInstance", "ContainerRun"]

log = logging.getLogger("podrunner")

MIN_SIDECAR_GRACE = 2.0  # a sidecar always gets this long after the app containers are gone
BACKOFF_START, BACKOFF_MAX = 1.0, 30.0


@dataclass
class Host:
    """What every pod on the runner shares."""

    api: kube.Api
    workdir: Path
    node: str
    images: ImageTable
    tools: podspec.Tools
    netns_prefix: str
    node_resources: dict[str, str] = field(default_factory=dict)
    podman: Podman | None = None  # None: containers are local processes


def _signal_name(code: int) -> str:
    with contextlib.suppress(ValueError):
        return signal.Signals(code).name
    return str(code)


async def _first(*aws: Any, timeout: float | None = None) -> None:
    """Wait until any of the awaitables is done (or the timeout). Coroutines passed in are cancelled
    afterwards; tasks passed in are left running."""
    owned = [asyncio.ensure_future(a) for a in aws if asyncio.iscoroutine(a)]
    given = [a for a in aws if not asyncio.iscoroutine(a)]
    try:
        await asyncio.wait([*owned, *given], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in owned:
            if not task.done():
                task.cancel()
        for task in owned:
            with contextlib.suppress(BaseException):
                await task


class ContainerRun:
    """One container: (re)starts its process, runs its probes, knows its containerStatus."""

    def __init__(self, pod: PodInstance, spec: dict[str, Any], *, init: bool):
        self.pod = pod
        self.spec = spec
        self.name: str = spec["name"]
        self.init = init
        self.sidecar = init and spec.get("restartPolicy") == "Always"
        self.log_path = pod.dir / "logs" / f"{self.name}.log"
        self.process: asyncio.subprocess.Process | None = None
        self.workload_pid: int | None = None  # the container's own main process (podman: not the client)
        self.container_name = f"{pod.netns.name}-{self.name}"  # podman
        self.waiting: tuple[str, str] = ("PodInitializing" if not init else "ContainerCreating", "")
        self.running_since: str | None = None
        self.terminated: dict[str, Any] | None = None
        self.last_terminated: dict[str, Any] | None = None
        self.started = False
        self.ready = False
        self.restart_count = 0
        self.final = False  # will not be started again
        self.started_event = asyncio.Event()  # startup probe passed (or none)
        self.started_at_monotonic: float | None = None

    # ------------------------------------------------------------ status

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def status(self) -> dict[str, Any]:
        if self.alive and self.running_since:
            state: dict[str, Any] = {"running": {"startedAt": self.running_since}}
        elif self.terminated is not None:
            state = {"terminated": self.terminated}
        else:
            reason, message = self.waiting
            state = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        status: dict[str, Any] = {
            "name": self.name, "image": self.spec.get("image", ""), "imageID": "",
            "ready": self.ready, "started": self.started, "restartCount": self.restart_count, "state": state,
            "lastState": {"terminated": self.last_terminated} if self.last_terminated else {},
        }
        if self.process is not None:
            status["containerID"] = f"podrunner://{self.pod.uid[:8]}-{self.name}-{self.process.pid}"
        return status

    def _changed(self) -> None:
        self.pod.changed()

    # ------------------------------------------------------------ process

    def _restart_wanted(self, code: int) -> bool:
        if self.sidecar:
            return True
        policy = self.pod.spec.get("restartPolicy", "Always")
        if self.init:  # a regular init container is retried until it succeeds, unless Never
            return code != 0 and policy != "Never"
        return policy == "Always" or (policy == "OnFailure" and code != 0)

    async def _spawn(self) -> None:
        host = self.pod.host
        podman = host.podman
        if podman is not None:
            ref = podman.resolve(self.spec.get("image", ""))
            image = await podman.image(ref)
            env = podspec.container_env(self.pod.pod, self.spec, image=LocalImage(), services=self.pod.services,
                                        objects=self.pod.objects, node=host.node_resources, runtime_defaults=False)
            who = podspec.identity(self.pod.pod, self.spec, image)
            argv = podspec.expanded_command(self.spec, env)
            full = podman_argv(binary=podman.binary, name=self.container_name, pod_uid=self.pod.uid,
                               netns=self.pod.netns.name, host=podspec.hostname(self.pod.pod), image=ref,
                               mounts=podspec.mounts(self.spec, self.pod.volume_dirs), who=who, env=env,
                               container=self.spec, expanded=argv)
            await podman.remove(self.container_name)  # a previous run's, after a restart
            shown = [ref, *argv.get("command", []), *argv.get("args", [])]
        else:
            local = host.images.lookup(self.spec.get("image", ""))
            env = podspec.container_env(self.pod.pod, self.spec, image=local or LocalImage(),
                                        services=self.pod.services, objects=self.pod.objects,
                                        node=host.node_resources)
            shown = podspec.container_argv(self.spec, local, env)
            who = podspec.identity(self.pod.pod, self.spec, local)
            workdir = self.spec.get("workingDir") or (local.workdir if local else "/")
            full = podspec.wrapper_argv(netns=self.pod.netns.name, host=podspec.hostname(self.pod.pod),
                                        mounts_=podspec.mounts(self.spec, self.pod.volume_dirs), who=who,
                                        workdir=workdir, argv=shown, tools=host.tools,
                                        scratch=str(self.pod.dir / "scratch" / self.name))
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                *full, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env if podman is None
                else None, start_new_session=True)
        self.workload_pid = self.process.pid if podman is None else None
        self.running_since = kube.now_rfc3339()
        self.started_at_monotonic = time.monotonic()
        self.terminated = None
        log.info("%s: started container %s (pid %d, uid %d): %s", self.pod.key, self.name, self.process.pid,
                 who.uid, " ".join(shown))

    async def _find_workload_pid(self) -> None:
        """podman: the pid of the container's main process (once runc has started it)."""
        assert self.pod.host.podman is not None
        for _ in range(100):
            if not self.alive:
                return
            self.workload_pid = await self.pod.host.podman.pid(self.container_name)
            if self.workload_pid:
                self._changed()
                return
            await asyncio.sleep(0.1)

    def signal(self, signum: int) -> None:
        if self.alive:
            assert self.process is not None
            with contextlib.suppress(ProcessLookupError):
                if signum == signal.SIGKILL:
                    os.killpg(self.process.pid, signal.SIGKILL)
                else:
                    self.process.send_signal(signum)  # podman run forwards it to the container

    async def stop(self, timeout: float) -> None:
        """SIGTERM, then SIGKILL (the whole process group) after timeout."""
        if not self.alive:
            return
        assert self.process is not None
        self.signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(self.process.wait()), timeout=max(timeout, 0.01))
        except asyncio.TimeoutError:
            log.warning("%s: container %s ignored SIGTERM for %.0f s: SIGKILL", self.pod.key, self.name, timeout)
            if self.pod.host.podman is not None:
                await self.pod.host.podman.kill(self.container_name)
            self.signal(signal.SIGKILL)
            await self.process.wait()

    # ------------------------------------------------------------ probes

    async def _probe_once(self, probe: dict[str, Any]) -> bool:
        timeout = float(probe.get("timeoutSeconds", 1))
        ns = self.pod.netns.name
        try:
            if "httpGet" in probe:
                get = probe["httpGet"]
                port = self._port(get.get("port"))
                status, _ = await asyncio.to_thread(
                    netns.http_get, ns, port, get.get("path", "/"), host=get.get("host") or "127.0.0.1",
                    timeout=timeout, tls=get.get("scheme", "HTTP").upper() == "HTTPS")
                return 200 <= status < 400
            if "tcpSocket" in probe:
                sock = probe["tcpSocket"]
                await asyncio.to_thread(netns.tcp_connect, ns, self._port(sock.get("port")),
                                        host=sock.get("host") or "127.0.0.1", timeout=timeout)
                return True
            if "exec" in probe:
                return await self._exec_probe(probe["exec"].get("command") or [], timeout)
        except (OSError, netns.NetNSError, ValueError):
            return False
        log.warning("%s: container %s: probe %s not supported; counted as passing", self.pod.key, self.name,
                    sorted(probe))
        return True

    def _port(self, port: Any) -> int:
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        for declared in self.spec.get("ports") or []:
            if declared.get("name") == port:
                return int(declared["containerPort"])
        raise ValueError(f"no port named {port!r}")

    async def _exec_probe(self, command: list[str], timeout: float) -> bool:
        """Run the command in the container's namespaces, as its user."""
        if not self.alive or not command:
            return False
        assert self.process is not None
        if self.pod.host.podman is not None:
            argv = self.pod.host.podman.exec_argv(self.container_name, command)
        else:
            argv = self._nsenter(command)
        proc = await asyncio.create_subprocess_exec(*argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                    stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            return await asyncio.wait_for(proc.wait(), timeout) == 0
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            return False

    def _nsenter(self, command: list[str]) -> list[str]:
        assert self.process is not None
        who = podspec.identity(self.pod.pod, self.spec, self.pod.host.images.lookup(self.spec.get("image", "")))
        return [self.pod.host.tools.nsenter, f"--target={self.process.pid}", "--net", "--mount", "--uts", "--",
                self.pod.host.tools.setpriv, f"--reuid={who.uid}", f"--regid={who.gid}", "--clear-groups", "--",
                *command]

    async def _probe_series(self, probe: dict[str, Any], kind: str) -> bool:
        """startup: True once it passes, False once it fails too often. readiness: runs forever.
        liveness: returns False once it fails too often."""
        period = float(probe.get("periodSeconds", 10))
        success_needed = int(probe.get("successThreshold", 1))
        failures_allowed = int(probe.get("failureThreshold", 3))
        await asyncio.sleep(float(probe.get("initialDelaySeconds", 0)))
        successes = failures = 0
        while True:
            ok = await self._probe_once(probe)
            if ok:
                successes, failures = successes + 1, 0
            else:
                successes, failures = 0, failures + 1
            if kind == "startup" and successes >= success_needed:
                return True
            if kind == "readiness":
                ready = self.ready
                if successes >= success_needed:
                    ready = True
                elif failures >= failures_allowed:
                    ready = False
                if ready != self.ready:
                    self.ready = ready
                    self._changed()
            elif failures >= failures_allowed:
                log.warning("%s: container %s failed its %s probe %d times", self.pod.key, self.name, kind, failures)
                return False
            await asyncio.sleep(period)

    async def _probes(self) -> None:
        """Startup, then readiness and liveness, for the running process. Kills it when startup or liveness fails."""
        startup = self.spec.get("startupProbe")
        if startup and not await self._probe_series(startup, "startup"):
            self.pod.emit("Unhealthy", f"Startup probe failed: container {self.name}", kind="Warning")
            await self.stop(self.pod.grace)
            return
        self.started = True
        self.started_event.set()
        readiness = self.spec.get("readinessProbe")
        self.ready = readiness is None
        self._changed()
        tasks = []
        if readiness:
            tasks.append(asyncio.ensure_future(self._probe_series(readiness, "readiness")))
        liveness = self.spec.get("livenessProbe")
        if liveness:
            tasks.append(asyncio.ensure_future(self._probe_series(liveness, "liveness")))
        try:
            if tasks:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                if any(t.result() is False for t in done):
                    self.pod.emit("Unhealthy", f"Liveness probe failed: container {self.name} will be restarted",
                                  kind="Warning")
                    await self.stop(self.pod.grace)
        finally:
            for task in tasks:
                task.cancel()

    # ------------------------------------------------------------ supervision

    async def supervise(self) -> None:
        """Start, probe, wait, restart per policy, until the pod stops or the container is done."""
        backoff = BACKOFF_START
        while not self.pod.stopping.is_set():
            try:
                await self.pod.refresh_objects()
                if self.pod.stopping.is_set():
                    break
                await self._spawn()
            except (podspec.ConfigError, kube.ApiError) as exc:
                self.waiting = (getattr(exc, "reason", "CreateContainerConfigError"), str(exc))
                self._changed()
                log.warning("%s: container %s: %s: %s", self.pod.key, self.name, self.waiting[0], exc)
                self.pod.emit("Failed", f"Error: {exc}", kind="Warning")
                await _first(self.pod.stopping.wait(), timeout=backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            assert self.process is not None
            if self.pod.stopping.is_set():  # the pod was deleted while this one started: no grace to speak of
                await self.stop(MIN_SIDECAR_GRACE)
            self.pod.emit("Started", f"Started container {self.name}")
            self._changed()
            if self.pod.host.podman is not None:
                self.pod.background(self._find_workload_pid())
            probes = asyncio.ensure_future(self._probes()) if not (self.init and not self.sidecar) else None
            if probes is None:  # a regular init container is "started" as soon as it runs
                self.started = True
            code = await self.process.wait()
            self.pod.times[f"exited:{self.name}"] = time.monotonic()
            if probes is not None:
                probes.cancel()
                with contextlib.suppress(BaseException):
                    await probes
            exit_code = code if code >= 0 else 128 + (-code)
            self.terminated = {
                "exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
                "startedAt": self.running_since, "finishedAt": kube.now_rfc3339(),
                "containerID": f"podrunner://{self.pod.uid[:8]}-{self.name}-{self.process.pid}",
            }
            if code < 0:
                self.terminated["signal"] = -code
            self.started = self.ready = False
            self.started_event.clear()
            ran = time.monotonic() - (self.started_at_monotonic or time.monotonic())
            log.info("%s: container %s exited with %s after %.1f s", self.pod.key, self.name,
                     code if code >= 0 else _signal_name(-code), ran)
            if self.pod.stopping.is_set() or not self._restart_wanted(exit_code):
                self.final = True
                self._changed()
                return
            # Not stopping and restarting: what was terminated becomes lastState.
            self.last_terminated, self.terminated = self.terminated, None
            self.restart_count += 1
            backoff = BACKOFF_START if ran > 60 else backoff
            self.waiting = ("CrashLoopBackOff", f"back-off {backoff:.0f}s restarting failed container={self.name}")
            self._changed()
            await _first(self.pod.stopping.wait(), timeout=backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)
        self.final = True


class PodInstance:
    """A pod the runner runs. `run()` until done; `terminate(grace)` from anywhere."""

    def __init__(self, host: Host, pod: dict[str, Any]):
        self.host = host
        self.pod = copy.deepcopy(pod)
        self.pod.setdefault("status", {})["hostIP"] = "127.0.0.1"
        self.pod["status"]["hostIPs"] = [{"ip": "127.0.0.1"}]
        meta = self.pod["metadata"]
        self.uid: str = meta["uid"]
        self.name: str = meta["name"]
        self.namespace: str = meta["namespace"]
        self.key = f"{self.namespace}/{self.name}"
        self.spec: dict[str, Any] = self.pod["spec"]
        self.grace = float(self.spec.get("terminationGracePeriodSeconds", 30))
        self.dir = host.workdir / "pods" / f"{self.namespace}_{self.name}_{self.uid[:8]}"
        self.netns = netns.NetNS(f"{host.netns_prefix}{os.getpid()}-{self.uid[:8]}", ip=host.tools.ip)
        self.relay: netns.Relay | None = None
        self.services = podspec.service_env("127.0.0.1", host.api.port)
        self.objects: dict[tuple[str, str], dict[str, Any] | None] = {}
        self.tokens: dict[podspec.TokenKey, str] = {}
        self.volume_dirs: dict[str, str] = {}
        self.inits = [ContainerRun(self, c, init=True) for c in self.spec.get("initContainers") or []]
        self.apps = [ContainerRun(self, c, init=False) for c in self.spec.get("containers") or []]
        self.sandbox_ready = False
        self.stopping = asyncio.Event()
        self.finished = asyncio.Event()  # processes gone and sandbox removed
        self.deleted = False  # the API object is gone (a force delete)
        self.times: dict[str, float] = {"seen": time.monotonic()}
        self.setup_error = ""
        self._sandbox_lock = asyncio.Lock()  # sandbox creation and teardown never interleave
        self.init_failed = False
        self.completed = False  # the app containers finished by themselves (restartPolicy Never/OnFailure)
        self._start_time = ""
        self._supervisors: list[asyncio.Task[None]] = []
        self._reporter: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._dirty = asyncio.Event()
        self._background: set[asyncio.Task[Any]] = set()
        self._transitions: dict[str, tuple[str, str]] = {}
        self._deadline: float | None = None
        self._terminator: asyncio.Task[None] | None = None

    @property
    def containers(self) -> list[ContainerRun]:
        return [*self.inits, *self.apps]

    def container(self, name: str) -> ContainerRun:
        return next(c for c in self.containers if c.name == name)

    def changed(self) -> None:
        self._dirty.set()

    def background(self, coro: Any) -> None:
        """Run a side task (an Event, a lookup) without waiting for it; kept referenced until done."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def emit(self, reason: str, message: str, *, kind: str = "Normal") -> None:
        """A core/v1 Event on the pod (what `kubectl describe pod` shows), sent in the background."""
        self.background(self.host.api.event(self.pod, reason, message, kind=kind))

    # ------------------------------------------------------------ status

    def phase(self) -> str:
        if self.init_failed:
            return "Failed"
        ran = any(c.running_since for c in self.apps)
        if ran and (self.completed or self.finished.is_set()):
            return "Succeeded" if all((c.terminated or {}).get("exitCode") == 0 for c in self.apps) else "Failed"
        if ran and self.initialized():
            return "Running"
        return "Pending"

    def initialized(self) -> bool:
        return all((c.started or c.final) if c.sidecar else (c.final and (c.terminated or {}).get("exitCode") == 0)
                   for c in self.inits)

    def status(self) -> dict[str, Any]:
        ready = all(c.ready for c in self.apps) and all(c.ready for c in self.inits if c.sidecar)
        wanted = {
            "PodScheduled": True,
            "PodReadyToStartContainers": self.sandbox_ready,
            "Initialized": self.initialized(),
            "ContainersReady": ready,
            "Ready": ready,
        }
        conditions = []
        for kind, value in wanted.items():
            text = "True" if value else "False"
            previous = self._transitions.get(kind)
            if previous is None or previous[0] != text:
                self._transitions[kind] = (text, kube.now_rfc3339())
            conditions.append({"type": kind, "status": text, "lastTransitionTime": self._transitions[kind][1]})
        status: dict[str, Any] = {
            "phase": self.phase(), "conditions": conditions, "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
            "startTime": self.pod.get("status", {}).get("startTime") or self._start_time,
            "containerStatuses": [c.status() for c in self.apps],
        }
        if self.inits:
            status["initContainerStatuses"] = [c.status() for c in self.inits]
        if self.setup_error:
            status["message"] = self.setup_error
        return status

    async def _report(self) -> None:
        """Patch the status whenever something changed (coalesced)."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            await self.flush_status()
            await asyncio.sleep(0.05)

    async def flush_status(self) -> None:
        if self.deleted:
            return
        try:
            if not await self.host.api.patch_status(self.namespace, self.name, self.uid, self.status()):
                self.deleted = True
        except Exception as exc:  # noqa: BLE001 - a failed patch is retried on the next change
            log.warning("%s: status patch failed: %s", self.key, exc)
            await asyncio.sleep(0.5)
            self._dirty.set()

    # ------------------------------------------------------------ setup

    async def refresh_objects(self) -> None:
        for kind, name in podspec.references(self.pod):
            path = f"/api/v1/namespaces/{self.namespace}/{'configmaps' if kind == 'ConfigMap' else 'secrets'}/{name}"
            self.objects[(kind, name)] = await self.host.api.get(path)

    async def _fetch_tokens(self) -> float:
        """Request every token the volumes need; returns the shortest lifetime."""
        shortest = 3600.0
        account = self.spec.get("serviceAccountName") or "default"
        for audience, seconds in podspec.token_sources(self.pod):
            token, ttl = await self.host.api.token(self.namespace, account, audience=audience, seconds=seconds,
                                                   pod=self.name, pod_uid=self.uid)
            self.tokens[(audience, seconds)] = token
            shortest = min(shortest, ttl)
        return shortest

    def _write_volumes(self, *, only_refreshing: bool = False) -> None:
        node = self.host.node_resources
        fs_group = ((self.spec.get("securityContext") or {}).get("fsGroup"))
        for volume in self.spec.get("volumes") or []:
            plan = podspec.volume_plan(self.pod, volume, objects=self.objects, tokens=self.tokens, node=node)
            if only_refreshing and not plan.refreshes:
                continue
            if plan.host_path is not None:
                self.volume_dirs[plan.name] = plan.host_path
                continue
            target = self.dir / "volumes" / plan.name
            target.mkdir(parents=True, exist_ok=True)
            target.chmod(0o777 if plan.empty else 0o755)
            for rel, (data, mode) in plan.files.items():
                path = target / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.tmp")
                tmp.write_bytes(data)
                tmp.chmod(mode)
                if fs_group is not None:
                    os.chown(tmp, -1, int(fs_group))
                os.replace(tmp, path)
            self.volume_dirs[plan.name] = str(target)

    async def _refresh_tokens(self, ttl: float) -> None:
        """Rewrite the token files at 80% of their lifetime, as the kubelet does."""
        while True:
            await asyncio.sleep(ttl * 0.8)
            try:
                ttl = await self._fetch_tokens()
                self._write_volumes(only_refreshing=True)
                log.info("%s: tokens refreshed", self.key)
            except Exception as exc:  # noqa: BLE001
                log.warning("%s: token refresh failed: %s", self.key, exc)
                ttl = 10 / 0.8

    async def _setup(self) -> bool:
        """Volumes, then the sandbox. Retried (like FailedMount) until it works or the pod is stopped."""
        attempt = 0
        while not self.stopping.is_set():
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
                await self.refresh_objects()
                ttl = await self._fetch_tokens()
                self._write_volumes()
                break
            except (podspec.ConfigError, kube.ApiError) as exc:
                attempt += 1
                self.setup_error = str(exc)
                for c in self.containers:
                    c.waiting = ("ContainerCreating", str(exc))
                self.changed()
                if attempt == 1 or attempt % 10 == 0:
                    log.warning("%s: volumes not ready: %s", self.key, exc)
                    self.emit("FailedMount", str(exc), kind="Warning")
                await _first(self.stopping.wait(), timeout=1.0)
        else:
            return False
        self.setup_error = ""
        async with self._sandbox_lock:
            if self.stopping.is_set():
                return False
            self._refresher = asyncio.ensure_future(self._refresh_tokens(ttl))
            await asyncio.to_thread(self.netns.create)
            self.relay = netns.Relay(self.netns.name, self.host.api.port)
            await self.relay.start()
        self.sandbox_ready = True
        self.times["sandbox"] = time.monotonic()
        self.changed()
        return True

    # ------------------------------------------------------------ run and terminate

    async def run(self) -> None:
        self._start_time = kube.now_rfc3339()
        self._reporter = asyncio.ensure_future(self._report())
        self.changed()
        if not await self._setup():
            return
        for c in self.inits:
            c.waiting = ("PodInitializing", "")
        for c in self.inits:
            if self.stopping.is_set():
                return
            task = asyncio.ensure_future(c.supervise())
            self._supervisors.append(task)
            if c.sidecar:
                await _first(c.started_event.wait(), self.stopping.wait(), task)
                if c.started:
                    self.times.setdefault(f"started:{c.name}", time.monotonic())
            else:
                await _first(task, self.stopping.wait())
                if task.done() and (c.terminated or {}).get("exitCode") != 0:
                    self.init_failed = True
                    break
        if self.stopping.is_set():
            return
        if not self.init_failed:
            for c in self.apps:
                self._supervisors.append(asyncio.ensure_future(c.supervise()))
            self.times["apps"] = time.monotonic()
        self.changed()
        while not self.stopping.is_set() and not self.init_failed:
            if self.apps and all(c.final for c in self.apps):
                self.completed = True  # stop the sidecars, keep the final status
                break
            pending = [t for t in self._supervisors if not t.done()]
            if not pending:
                break
            await _first(self.stopping.wait(), *pending)
        if not self.stopping.is_set():
            await self.terminate(self.grace)

    def shorten_grace(self, grace: float) -> None:
        """A second deletion with a shorter grace period (e.g. --force) moves the deadline closer."""
        deadline = time.monotonic() + max(grace, 0.0)
        if self._deadline is None or deadline < self._deadline:
            self._deadline = deadline

    async def terminate(self, grace: float) -> None:
        """Graceful stop: app containers first, then sidecars; SIGKILL at the deadline. Idempotent; a shorter
        grace than one already running shortens it."""
        self.shorten_grace(grace)
        self.stopping.set()
        if self._terminator is None:
            self._terminator = asyncio.ensure_future(self._shutdown(grace))
        await asyncio.shield(self._terminator)

    async def _shutdown(self, grace: float) -> None:
        self.stopping.set()
        if self._deadline is None:
            self._deadline = time.monotonic() + grace
        self.times["terminating"] = time.monotonic()

        def left() -> float:
            assert self._deadline is not None
            return self._deadline - time.monotonic()

        first = [c for c in [*self.apps, *(c for c in self.inits if not c.sidecar)] if c.alive]
        if first:
            await asyncio.gather(*(c.stop(left()) for c in first))
        for c in reversed([c for c in self.inits if c.sidecar]):
            await c.stop(max(left(), MIN_SIDECAR_GRACE))
        for task in self._supervisors:
            with contextlib.suppress(BaseException):
                await task
        self.times["stopped"] = time.monotonic()
        await self._teardown_sandbox()
        self.changed()

    async def _teardown_sandbox(self) -> None:
        async with self._sandbox_lock:
            if self.relay is not None:
                await self.relay.close()
                self.relay = None
            await asyncio.to_thread(self._kill_leftovers)
            if self.host.podman is not None:
                for c in self.containers:
                    await self.host.podman.remove(c.container_name)
            await asyncio.to_thread(self.netns.delete)
            if self._refresher is not None:
                self._refresher.cancel()
        self.sandbox_ready = False
        self.finished.set()

    def _kill_leftovers(self) -> None:
        """SIGKILL any process still in the pod's namespace (a container's orphaned children)."""
        if not self.netns.path.exists():
            return
        done = subprocess.run([self.host.tools.ip, "netns", "pids", self.netns.name], capture_output=True, text=True)
        for pid in done.stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)

    async def close(self) -> None:
        """Final status flush and stop reporting (after terminate or completion)."""
        await self.flush_status()
        for task in (self._reporter, self._refresher, *self._background):
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
