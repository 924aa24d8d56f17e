"""Per-pod options read from `elector.dev/*` annotations, validated.

Every problem becomes a `Refusal` that names the annotation and the accepted values,
so `kubectl` shows the user exactly what to fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from elector.election import timings
from webhook.settings import ANNOTATION_PREFIX, Settings

INJECT = ANNOTATION_PREFIX + "inject"
ELECTION = ANNOTATION_PREFIX + "election"
PORT = ANNOTATION_PREFIX + "port"
PROBE_PORT = ANNOTATION_PREFIX + "probe-port"
LEASE_DURATION = ANNOTATION_PREFIX + "lease-duration"
RENEW_DEADLINE = ANNOTATION_PREFIX + "renew-deadline"
RETRY_PERIOD = ANNOTATION_PREFIX + "retry-period"
RENEW_INTERVAL = ANNOTATION_PREFIX + "renew-interval"
CONTAINERS = ANNOTATION_PREFIX + "containers"
RELEASE_TIMEOUT = ANNOTATION_PREFIX + "release-timeout"
LEADER_SERVICE = ANNOTATION_PREFIX + "leader-service"
LEADER_LABEL = ANNOTATION_PREFIX + "leader-label"
ROLLOUT_AWARE = ANNOTATION_PREFIX + "rollout-aware"
INJECTED = ANNOTATION_PREFIX + "injected"  # written by us: the version that injected the pod

#: Annotations a user may set, with the help shown when one is wrong.
KNOWN = {
    INJECT: '"true" or "false"',
    ELECTION: "a DNS-1123 label: lower-case letters, digits and '-', at most 63, e.g. my-app",
    PORT: "a port number from 1024 to 65535 not used by any container of the pod",
    PROBE_PORT: "a port number from 1024 to 65535 not used by any container of the pod",
    LEASE_DURATION: f"a duration such as 15s, {timings.RANGES['lease-duration'].describe()}, "
                    f"at least {timings.format(timings.MIN_MARGIN)} above the renew deadline",
    RENEW_DEADLINE: f"a duration such as 10s, {timings.RANGES['renew-deadline'].describe()}, at least "
                    f"{timings.format(timings.MIN_MARGIN)} below the lease duration and above "
                    f"{timings.JITTER_FACTOR} x the retry period",
    RETRY_PERIOD: f"a duration such as 2s, {timings.RANGES['retry-period'].describe()}",
    RENEW_INTERVAL: f"a duration such as 5s, {timings.RANGES['renew-interval'].describe()}, from the retry period "
                    "to the renew deadline less two retry periods: how often the leader renews (default: two fifths of the lease)",
    CONTAINERS: "a comma-separated list of the pod's container names, e.g. app,worker",
    RELEASE_TIMEOUT: f"a duration such as 5s, {timings.RANGES['release-timeout'].describe()}: how long the elector waits for the app's POST /release on shutdown",
    LEADER_SERVICE: "the name of a Service without a selector in the pod's namespace (a DNS-1035 label, "
                    "e.g. my-app-leader): the kube-elector controller keeps its EndpointSlice pointing at the leader",
    LEADER_LABEL: '"true" or "false": the kube-elector controller keeps the label elector.dev/leader=true on the '
                  "leader pod (for a Service selector)",
    ROLLOUT_AWARE: '"true" (default) or "false": during a rolling update, the kube-elector controller hands '
                   "leadership once to a Ready pod of the newest revision",
}

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_HASH_LABEL = "pod-template-hash"


class Refusal(Exception):
    """The pod opted in but cannot be injected safely; `str()` is the message for the user."""

    def __init__(self, field: str, problem: str, accepted: str) -> None:
        super().__init__(f"{field}: {problem}; accepted: {accepted}")
        self.field = field


@dataclass(frozen=True)
class PodOptions:
    """What to inject into one pod, after defaults and validation."""

    election: str
    port: int
    probe_port: int
    lease_duration: str
    renew_deadline: str
    retry_period: str
    env_containers: frozenset[str] | None  # None: every container
    release_timeout: str | None
    renew_interval: str | None = None  # None: the elector's default, two fifths of the lease
    # Validated here so a bad value is refused at admission; the kube-elector controller acts on them
    # (it reads the pod's annotations), the sidecar gets no flag for them.
    leader_service: str | None = None  # a selector-less Service pointed at the leader
    leader_label: bool = False  # the elector.dev/leader=true label on the leader pod
    rollout_aware: bool = True  # hand over once per rolling update, to a Ready pod of the newest revision


def annotations(pod: dict[str, Any]) -> dict[str, str]:
    """The pod's annotations, {} when absent or malformed: the pod comes from an unauthenticated request."""
    meta = pod.get("metadata") or {}
    found = meta.get("annotations") or {}
    return found if isinstance(found, dict) else {}


def labels(pod: dict[str, Any]) -> dict[str, str]:
    """The pod's labels, {} when absent or malformed: the pod comes from an unauthenticated request."""
    meta = pod.get("metadata") or {}
    found = meta.get("labels") or {}
    return found if isinstance(found, dict) else {}


def read(pod: dict[str, Any], settings: Settings) -> PodOptions:
    """Options for `pod`; raises Refusal on the first invalid annotation."""
    notes = annotations(pod)
    port = _port(notes, PORT, settings.port)
    probe_port = _port(notes, PROBE_PORT, settings.probe_port if PORT not in notes else port + 1)
    if port == probe_port:
        raise Refusal(PROBE_PORT, f"equals {PORT} ({port})", KNOWN[PROBE_PORT])
    given, seconds = {}, []
    for key, default in (
        (LEASE_DURATION, settings.election.lease_duration),
        (RENEW_DEADLINE, settings.election.renew_deadline),
        (RETRY_PERIOD, settings.election.retry_period),
    ):
        given[key], parsed = _duration(notes, key, default)
        seconds.append(parsed)
    interval, interval_seconds = _duration(notes, RENEW_INTERVAL, None) if RENEW_INTERVAL in notes else (None, 0.0)
    try:
        timings.check_timings(*seconds)
        if interval is not None:
            timings.renew_interval(*seconds, interval_seconds)
    except timings.TimingError as exc:
        field = ANNOTATION_PREFIX + exc.name  # the one to change; else one the pod set, the others are defaults
        if field not in notes:
            field = next((k for k in (LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD) if k in notes), field)
        raise Refusal(field, str(exc), KNOWN[field]) from None
    release = _duration(notes, RELEASE_TIMEOUT, None)[0] if RELEASE_TIMEOUT in notes else None
    return PodOptions(
        election=election_name(pod),
        port=port,
        probe_port=probe_port,
        lease_duration=given[LEASE_DURATION],
        renew_deadline=given[RENEW_DEADLINE],
        retry_period=given[RETRY_PERIOD],
        env_containers=_containers(pod, notes),
        release_timeout=release,
        renew_interval=interval,
        leader_service=_leader_service(notes),
        leader_label=_bool(notes, LEADER_LABEL),
        rollout_aware=_bool(notes, ROLLOUT_AWARE, default=True),
    )


def _leader_service(notes: dict[str, str]) -> str | None:
    if LEADER_SERVICE not in notes:
        return None
    name = notes[LEADER_SERVICE]
    if not isinstance(name, str) or not _DNS1035_LABEL.match(name) or len(name) > 63:
        raise Refusal(LEADER_SERVICE, f"{name!r} is not a Service name", KNOWN[LEADER_SERVICE])
    return name


def _bool(notes: dict[str, str], key: str, *, default: bool = False) -> bool:
    value = notes.get(key, "true" if default else "false")
    if value not in ("true", "false"):
        raise Refusal(key, f"{value!r} is not a boolean", KNOWN[key])
    return value == "true"


def election_name(pod: dict[str, Any]) -> str:
    """The election a pod joins: stable across the ReplicaSets of one Deployment.

    `elector.dev/election`, else the `app.kubernetes.io/name` or `app` label, else the
    controller owner's name without the pod-template-hash, else generateName trimmed.
    """
    notes, tags = annotations(pod), labels(pod)
    if ELECTION in notes:
        name = notes[ELECTION]
        if not isinstance(name, str) or not _DNS1123_LABEL.match(name) or len(name) > 63:
            raise Refusal(ELECTION, f"{name!r} is not a DNS-1123 label", KNOWN[ELECTION])
        return name
    for key in ("app.kubernetes.io/name", "app"):
        if tags.get(key):
            return _sanitize(str(tags[key]), source=f"label {key}")
    meta = pod.get("metadata") or {}
    owner = _controller_owner(meta)
    if owner:
        return _sanitize(_strip_hash(owner, tags), source="the owner's name")
    generate = meta.get("generateName")
    if isinstance(generate, str) and generate.strip("-"):
        return _sanitize(_strip_hash(generate.rstrip("-"), tags), source="generateName")
    name = meta.get("name")
    if isinstance(name, str) and name:
        return _sanitize(name, source="the pod name")
    raise Refusal(ELECTION, "no election name could be derived from labels, owner or name", KNOWN[ELECTION])


def _controller_owner(meta: dict[str, Any]) -> str | None:
    owners = meta.get("ownerReferences") or []
    if not isinstance(owners, list):
        return None
    for ref in owners:
        if isinstance(ref, dict) and ref.get("controller") and isinstance(ref.get("name"), str):
            return str(ref["name"])
    return None


def _strip_hash(name: str, tags: dict[str, str]) -> str:
    """`web-5d8f7c9b4` -> `web`: a ReplicaSet's name is its Deployment's plus the template hash."""
    hash_ = tags.get(_HASH_LABEL)
    if isinstance(hash_, str) and hash_ and name.endswith("-" + hash_):
        return name[: -len(hash_) - 1]
    return name


def _sanitize(value: str, *, source: str) -> str:
    """Turn a label value or object name into a DNS-1123 label usable as a Lease name."""
    name = re.sub(r"[^a-z0-9-]+", "-", value.lower())[:63].strip("-")
    if not name:
        raise Refusal(ELECTION, f"{source} ({value!r}) gives no usable election name", KNOWN[ELECTION])
    return name


def _port(notes: dict[str, str], key: str, default: int) -> int:
    if key not in notes:
        return default
    raw = notes[key]
    if not isinstance(raw, str) or not (raw.isascii() and raw.isdigit()) or not 1024 <= int(raw) <= 65535:
        raise Refusal(key, f"{raw!r} is not a port from 1024 to 65535", KNOWN[key])
    return int(raw)


def _duration(notes: dict[str, str], key: str, default: str | None) -> tuple[str, float]:
    """The duration as written (what the elector is given) and its seconds; Refusal if it does not parse."""
    raw = notes.get(key, default)
    try:
        seconds = timings.parse(str(raw))
        if key == RELEASE_TIMEOUT:
            timings.check("release-timeout", seconds)
    except ValueError as exc:
        raise Refusal(key, str(exc), KNOWN[key]) from None
    return str(raw), seconds


def _containers(pod: dict[str, Any], notes: dict[str, str]) -> frozenset[str] | None:
    if CONTAINERS not in notes:
        return None
    wanted = frozenset(n.strip() for n in str(notes[CONTAINERS]).split(",") if n.strip())
    spec = pod.get("spec") or {}
    present = {c.get("name") for key in ("containers", "initContainers") for c in spec.get(key) or []}
    missing = sorted(wanted - present)
    if not wanted or missing:
        problem = f"no container named {', '.join(missing)}" if missing else "empty list"
        raise Refusal(CONTAINERS, problem, KNOWN[CONTAINERS])
    return wanted
