"""The core: pod dict + settings -> mutated pod dict. Pure: no I/O, no clock.

The admission layer diffs the result against the original (jsonpatch), as
controller-runtime's PatchResponseFromRaw does, so nothing here writes patch operations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from webhook import existing, options, sidecar
from webhook.settings import VERSION, Settings

ELECTION_LABEL = "elector.dev/election"
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"


@dataclass(frozen=True)
class Decision:
    """Whether to inject, and why (logged and counted)."""

    inject: bool
    reason: str


@dataclass(frozen=True)
class Result:
    """The pod to store (None: leave it untouched) and any warnings for kubectl."""

    pod: dict[str, Any] | None
    decision: Decision
    election: str | None = None
    warnings: list[str] = field(default_factory=list)


def decide(pod: dict[str, Any], *, namespace: str, namespace_opted_in: bool, settings: Settings) -> Decision:
    """Opt-in by pod annotation, or by namespace label unless the pod opts out."""
    if namespace in settings.excluded_namespaces:
        return Decision(False, f"namespace {namespace} is excluded")
    value = options.annotations(pod).get(options.INJECT)
    if value == "false":
        return Decision(False, "pod opted out")
    if value == "true":
        return Decision(True, "pod annotation")
    if value is not None:
        raise options.Refusal(options.INJECT, f"{value!r} is not a boolean", options.KNOWN[options.INJECT])
    if namespace_opted_in:
        return Decision(True, "namespace label")
    return Decision(False, "not opted in")


def mutate(pod: dict[str, Any], *, namespace: str, namespace_opted_in: bool, settings: Settings) -> Result:
    """Decide, validate and inject. Raises options.Refusal when the pod must be denied."""
    decision = decide(pod, namespace=namespace, namespace_opted_in=namespace_opted_in, settings=settings)
    if not decision.inject:
        return Result(None, decision)
    spec = pod.get("spec") or {}
    host_network = spec.get("hostNetwork") is True
    if host_network and not settings.allow_host_network:
        raise options.Refusal(
            "spec.hostNetwork", "a hostNetwork pod is not injected: the elector's ports would be the node's, open to "
            "every process on it (POST /release included)", "hostNetwork: false, or the webhook setting "
            "allow_host_network: true (the elector then listens on 127.0.0.1 only)")
    opts = options.read(pod, settings)
    _check_ports(pod, opts)
    mutated = inject(pod, opts, namespace=namespace, settings=settings)
    warnings = []
    if host_network:
        warnings.append(f"hostNetwork pod: the elector's localhost:{opts.port} and 127.0.0.1:{opts.probe_port} "
                        "are shared with every process on the node")
    return Result(mutated, decision, election=opts.election, warnings=warnings)


def inject(pod: dict[str, Any], opts: options.PodOptions, *, namespace: str, settings: Settings) -> dict[str, Any]:
    """A new pod with the sidecar, its volume, the app env and our markers; `pod` is not changed.

    Copy-on-write: only the dicts and lists on a changed path are new, unchanged subtrees are
    shared with `pod`, so the diff can skip them by identity (see admission.diff).
    Idempotent: a pod that already has everything comes back equal, so re-invocation is safe.
    """
    new = dict(pod)
    meta = new["metadata"] = dict(pod.get("metadata") or {})
    spec = new["spec"] = dict(pod.get("spec") or {})
    host_network = spec.get("hostNetwork") is True
    elector = sidecar.container(opts, namespace=namespace, settings=settings, host_network=host_network)
    volume = sidecar.token_volume(settings)
    # Ours from an earlier pass: as they are. Anyone else's: Refusal (existing.py says why).
    ours = existing.check(spec, elector, volume, native=settings.native_sidecar)
    if not ours:
        spec["volumes"] = [*(spec.get("volumes") or []), volume]
        if settings.native_sidecar:
            # First, so later init containers and the app start after it serves.
            spec["initContainers"] = [elector, *(spec.get("initContainers") or [])]
        else:
            spec["containers"] = [*(spec.get("containers") or []), elector]
    env = sidecar.app_env(opts)
    for key in ("initContainers", "containers"):
        if spec.get(key):
            spec[key] = [
                _with_env(c, env) if c.get("name") != sidecar.CONTAINER_NAME
                and (opts.env_containers is None or c.get("name") in opts.env_containers) else c
                for c in spec[key]
            ]
    if not ours:  # the marker says kube-elector put the sidecar there: only on a pod it did
        meta["annotations"] = {**(meta.get("annotations") or {}), options.INJECTED: VERSION}
    meta["labels"] = {ELECTION_LABEL: opts.election, **(meta.get("labels") or {})}
    if not settings.native_sidecar and spec.get("containers"):
        meta["annotations"] = dict(meta.get("annotations") or {})
        meta["annotations"].setdefault(DEFAULT_CONTAINER, spec["containers"][0].get("name"))
    return new


def _all_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def _app_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in _all_containers(spec) if c.get("name") != sidecar.CONTAINER_NAME]


def _with_env(container: dict[str, Any], env: list[dict[str, str]]) -> dict[str, Any]:
    """The container with the missing vars before its own, so it can refer to $(ELECTOR_GET_URL); never overrides."""
    present = {e.get("name") for e in container.get("env") or []}
    missing = [e for e in env if e["name"] not in present]
    if not missing:
        return container
    return {**container, "env": [*missing, *(container.get("env") or [])]}


def _check_ports(pod: dict[str, Any], opts: options.PodOptions) -> None:
    spec = pod.get("spec") or {}
    for c in _app_containers(spec):
        for p in c.get("ports") or []:
            port = p.get("containerPort")
            if port in (opts.port, opts.probe_port):
                key = options.PORT if port == opts.port else options.PROBE_PORT
                raise options.Refusal(
                    key,
                    f"port {port} is already used by container {c.get('name')!r}",
                    options.KNOWN[key],
                )
