"""From a stored Pod to what a kubelet would run: env, argv, volume files, the process wrapper.

Pure functions over plain dicts (the Pod as the API server returns it), so every rule here is
unit-tested without a control plane. What the API must supply (ConfigMaps, Secrets, tokens) is
fetched by the caller first (`references`, `token_sources`) and passed in.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import os
import re
import shlex
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from podrunner.images import DEFAULT_PATH, LocalImage

__all__ = [
    "ConfigError", "Objects", "TokenKey", "VolumePlan", "Mount", "Identity",
    "expand", "field_value", "container_env", "container_argv", "references", "token_sources",
    "volume_plan", "mounts", "identity", "wrapper_argv", "service_env", "hostname",
]

Pod = Mapping[str, Any]
Container = Mapping[str, Any]
# (kind, name) -> the object, or None when it does not exist
Objects = Mapping[tuple[str, str], "Mapping[str, Any] | None"]
# (audience, expirationSeconds) -> token
TokenKey = tuple[str, int]

_FIELD_INDEX = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class ConfigError(Exception):
    """The container cannot be created as specified; `reason` is the kubelet's waiting reason."""

    def __init__(self, message: str, reason: str = "CreateContainerConfigError"):
        super().__init__(message)
        self.reason = reason


# ---------------------------------------------------------------- $(VAR) expansion


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion: defined names are replaced, `$$` is `$`, anything else stays."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$" or i + 1 >= len(text):
            out.append(char)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            close = text.find(")", i + 2)
            if close < 0:
                out.append("$(")
                i += 2
            else:
                name = text[i + 2 : close]
                out.append(env[name] if name in env else f"$({name})")
                i = close + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out)


# ---------------------------------------------------------------- downward API


def field_value(pod: Pod, path: str) -> str:
    """The value of a downward-API fieldRef (env or volume)."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.hostIP": status.get("hostIP", ""),
        "status.podIP": status.get("podIP", ""),
        "status.hostIPs": ",".join(ip["ip"] for ip in status.get("hostIPs") or []),
        "status.podIPs": ",".join(ip["ip"] for ip in status.get("podIPs") or []),
    }
    if path in simple:
        return str(simple[path])
    if path in ("metadata.labels", "metadata.annotations"):
        values = meta.get(path.split(".")[1]) or {}
        return "\n".join(f"{key}={json.dumps(values[key])}" for key in sorted(values))
    match = _FIELD_INDEX.match(path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    raise ConfigError(f"unsupported fieldRef {path!r}")


_SUFFIXES = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12), "P": Decimal(10**15),
    "E": Decimal(10**18), "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40),
    "Pi": Decimal(2**50), "Ei": Decimal(2**60),
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")


def quantity(text: str | int | float) -> Decimal:
    """A resource.Quantity ("100m", "64Mi", "1.5") as a Decimal."""
    match = _QUANTITY.match(str(text).strip())
    if not match or match.group(2) not in _SUFFIXES:
        raise ConfigError(f"invalid quantity {text!r}")
    return Decimal(match.group(1)) * _SUFFIXES[match.group(2)]


def resource_value(container: Container, ref: Mapping[str, Any], node: Mapping[str, str]) -> str:
    """A resourceFieldRef: the limit (or the node's allocatable when unset) or request, ceil'd to the divisor."""
    resource = ref.get("resource", "")
    kind, _, name = resource.partition(".")
    resources = (container.get("resources") or {}).get("limits" if kind == "limits" else "requests") or {}
    if kind not in ("limits", "requests") or not name:
        raise ConfigError(f"unsupported resourceFieldRef {resource!r}")
    raw = resources.get(name)
    if raw is None:
        raw = node.get(name, "0") if kind == "limits" else "0"
    divisor = quantity(ref.get("divisor") or "1")
    return str(math.ceil(quantity(raw) / divisor))


# ---------------------------------------------------------------- references to fetch first


def _value_refs(container: Container) -> list[tuple[str, Mapping[str, Any]]]:
    refs: list[tuple[str, Mapping[str, Any]]] = []
    for var in container.get("env") or []:
        source = var.get("valueFrom") or {}
        for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
            if key in source:
                refs.append((kind, source[key]))
    for source in container.get("envFrom") or []:
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if key in source:
                refs.append((kind, source[key]))
    return refs


def _volume_refs(volume: Mapping[str, Any]) -> list[tuple[str, str]]:
    if "configMap" in volume:
        return [("ConfigMap", volume["configMap"].get("name", ""))]
    if "secret" in volume:
        return [("Secret", volume["secret"].get("secretName", ""))]
    refs: list[tuple[str, str]] = []
    for source in (volume.get("projected") or {}).get("sources") or []:
        if "configMap" in source:
            refs.append(("ConfigMap", source["configMap"].get("name", "")))
        if "secret" in source:
            refs.append(("Secret", source["secret"].get("name", "")))
    return refs


def all_containers(pod: Pod) -> list[Container]:
    spec = pod.get("spec") or {}
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def references(pod: Pod) -> set[tuple[str, str]]:
    """Every (kind, name) of ConfigMap/Secret the pod's env and volumes read."""
    refs = {(kind, ref.get("name", "")) for c in all_containers(pod) for kind, ref in _value_refs(c)}
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        refs.update(_volume_refs(volume))
    return refs


def token_sources(pod: Pod) -> set[TokenKey]:
    """Every (audience, expirationSeconds) of the pod's projected serviceAccountToken sources."""
    keys: set[TokenKey] = set()
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        for source in (volume.get("projected") or {}).get("sources") or []:
            token = source.get("serviceAccountToken")
            if token is not None:
                keys.add((token.get("audience", ""), int(token.get("expirationSeconds", 3600))))
    return keys


def _data(obj: Mapping[str, Any], kind: str) -> dict[str, bytes]:
    if kind == "Secret":
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return data


def _lookup(objects: Objects, kind: str, name: str, optional: bool) -> dict[str, bytes] | None:
    obj = objects.get((kind, name))
    if obj is None:
        if optional:
            return None
        raise ConfigError(f'{kind.lower()} "{name}" not found')
    return _data(obj, kind)


# ---------------------------------------------------------------- env and argv


def hostname(pod: Pod) -> str:
    spec = pod.get("spec") or {}
    return str(spec.get("hostname") or pod["metadata"]["name"])[:63]


def service_env(host: str, port: int) -> dict[str, str]:
    """The `kubernetes` Service's env vars, as the kubelet sets them in every container."""
    return {
        "KUBERNETES_SERVICE_HOST": host,
        "KUBERNETES_SERVICE_PORT": str(port),
        "KUBERNETES_SERVICE_PORT_HTTPS": str(port),
        "KUBERNETES_PORT": f"tcp://{host}:{port}",
        f"KUBERNETES_PORT_{port}_TCP": f"tcp://{host}:{port}",
        f"KUBERNETES_PORT_{port}_TCP_PROTO": "tcp",
        f"KUBERNETES_PORT_{port}_TCP_PORT": str(port),
        f"KUBERNETES_PORT_{port}_TCP_ADDR": host,
    }


def container_env(
    pod: Pod,
    container: Container,
    *,
    image: LocalImage,
    services: Mapping[str, str],
    objects: Objects,
    node: Mapping[str, str],
    runtime_defaults: bool = True,
) -> dict[str, str]:
    """The container's environment: image ENV < HOSTNAME < service vars < envFrom < env (kubelet order).

    `runtime_defaults` adds what a container runtime would (PATH, HOME): for a process, not for podman."""
    declared: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if key in source:
                ref = source[key]
                data = _lookup(objects, kind, ref.get("name", ""), bool(ref.get("optional")))
                for name, value in (data or {}).items():
                    declared[source.get("prefix", "") + name] = value.decode(errors="replace")
    for var in container.get("env") or []:
        name = var["name"]
        source = var.get("valueFrom")
        if source is None:
            declared[name] = expand(var.get("value", ""), {**services, **declared})
        elif "fieldRef" in source:
            declared[name] = field_value(pod, source["fieldRef"]["fieldPath"])
        elif "resourceFieldRef" in source:
            ref = source["resourceFieldRef"]
            target = container
            if ref.get("containerName"):
                target = next((c for c in all_containers(pod) if c["name"] == ref["containerName"]), container)
            declared[name] = resource_value(target, ref, node)
        else:
            kind, key = ("ConfigMap", "configMapKeyRef") if "configMapKeyRef" in source else ("Secret", "secretKeyRef")
            ref = source.get(key)
            if ref is None:
                raise ConfigError(f"env {name}: unsupported valueFrom {sorted(source)}")
            data = _lookup(objects, kind, ref.get("name", ""), bool(ref.get("optional")))
            if data is None:
                continue
            if ref["key"] not in data:
                if ref.get("optional"):
                    continue
                raise ConfigError(f'couldn\'t find key {ref["key"]} in {kind} {pod["metadata"]["namespace"]}/{ref.get("name")}')
            declared[name] = data[ref["key"]].decode(errors="replace")
    if not runtime_defaults:
        return {"HOSTNAME": hostname(pod), **services, **declared}
    env = {"PATH": DEFAULT_PATH, **image.env, "HOSTNAME": hostname(pod), **services, **declared}
    env.setdefault("HOME", "/")
    return env


def expanded_command(container: Container, env: Mapping[str, str]) -> dict[str, list[str]]:
    """The container's own `command` and `args` with `$(VAR)` expanded (absent ones stay absent)."""
    return {key: [expand(part, env) for part in container[key]] for key in ("command", "args")
            if container.get(key) is not None and (key == "args" or container[key])}


def container_argv(container: Container, image: LocalImage | None, env: Mapping[str, str]) -> list[str]:
    """command/args over ENTRYPOINT/CMD (Kubernetes rules), with `$(VAR)` expanded."""
    command, args = container.get("command"), container.get("args")
    if command:
        argv = [*command, *(args or [])]
    elif image is None:
        raise ConfigError(f'image "{container.get("image")}" is not known to the pod runner and the container '
                          "has no command", reason="ImageNotKnown")
    elif args is not None:
        argv = [*image.entrypoint, *args]
    else:
        argv = [*image.entrypoint, *image.cmd]
    if not argv:
        raise ConfigError("no command specified", reason="CreateContainerError")
    return [expand(part, env) for part in argv]


# ---------------------------------------------------------------- volumes


@dataclass(frozen=True)
class VolumePlan:
    """A volume as a directory on the host: files to write, or an existing host path."""

    name: str
    files: dict[str, tuple[bytes, int]] = field(default_factory=dict)  # relative path -> (content, mode)
    host_path: str | None = None
    empty: bool = False  # emptyDir: a writable directory, 0777 as the kubelet makes it
    refreshes: bool = False  # holds a token: rewrite before it expires


def _items(data: dict[str, bytes] | None, items: list[Mapping[str, Any]] | None, mode: int, what: str
           ) -> dict[str, tuple[bytes, int]]:
    if data is None:
        return {}
    if not items:
        return {key: (value, mode) for key, value in data.items()}
    files: dict[str, tuple[bytes, int]] = {}
    for item in items:
        if item["key"] not in data:
            raise ConfigError(f"{what}: key {item['key']!r} not found")
        files[item["path"]] = (data[item["key"]], item.get("mode", mode))
    return files


def _downward(pod: Pod, items: list[Mapping[str, Any]], mode: int, container_of: Container | None,
              node: Mapping[str, str]) -> dict[str, tuple[bytes, int]]:
    files: dict[str, tuple[bytes, int]] = {}
    for item in items:
        if "fieldRef" in item:
            value = field_value(pod, item["fieldRef"]["fieldPath"])
        else:
            ref = item["resourceFieldRef"]
            target = next((c for c in all_containers(pod) if c["name"] == ref.get("containerName")), container_of)
            if target is None:
                raise ConfigError(f"downwardAPI {item['path']}: resourceFieldRef needs containerName")
            value = resource_value(target, ref, node)
        files[item["path"]] = (value.encode(), item.get("mode", mode))
    return files


def volume_plan(pod: Pod, volume: Mapping[str, Any], *, objects: Objects, tokens: Mapping[TokenKey, str],
                node: Mapping[str, str]) -> VolumePlan:
    """What to put on disk for one volume of the pod."""
    name = volume["name"]
    if "emptyDir" in volume:
        return VolumePlan(name, empty=True)
    if "hostPath" in volume:
        return VolumePlan(name, host_path=volume["hostPath"]["path"])
    if "configMap" in volume:
        source = volume["configMap"]
        data = _lookup(objects, "ConfigMap", source.get("name", ""), bool(source.get("optional")))
        return VolumePlan(name, _items(data, source.get("items"), source.get("defaultMode", 0o644), name))
    if "secret" in volume:
        source = volume["secret"]
        data = _lookup(objects, "Secret", source.get("secretName", ""), bool(source.get("optional")))
        return VolumePlan(name, _items(data, source.get("items"), source.get("defaultMode", 0o644), name))
    if "downwardAPI" in volume:
        source = volume["downwardAPI"]
        return VolumePlan(name, _downward(pod, source.get("items") or [], source.get("defaultMode", 0o644), None, node))
    if "projected" in volume:
        projected = volume["projected"]
        mode = projected.get("defaultMode", 0o644)
        files: dict[str, tuple[bytes, int]] = {}
        refreshes = False
        for source in projected.get("sources") or []:
            if "serviceAccountToken" in source:
                token = source["serviceAccountToken"]
                key = (token.get("audience", ""), int(token.get("expirationSeconds", 3600)))
                files[token["path"]] = (tokens[key].encode(), mode)
                refreshes = True
            elif "configMap" in source or "secret" in source:
                kind, src = ("ConfigMap", source["configMap"]) if "configMap" in source else ("Secret", source["secret"])
                data = _lookup(objects, kind, src.get("name", ""), bool(src.get("optional")))
                files.update(_items(data, src.get("items"), mode, name))
            elif "downwardAPI" in source:
                files.update(_downward(pod, source["downwardAPI"].get("items") or [], mode, None, node))
            else:
                raise ConfigError(f"volume {name}: projected source {sorted(source)} is not supported by the pod runner")
        return VolumePlan(name, files, refreshes=refreshes)
    kinds = sorted(set(volume) - {"name"})
    raise ConfigError(f"volume {name}: {kinds} is not supported by the pod runner")


@dataclass(frozen=True)
class Mount:
    source: str  # host directory or file
    target: str  # mountPath in the container
    read_only: bool


def mounts(container: Container, volume_dirs: Mapping[str, str]) -> list[Mount]:
    """The container's volumeMounts as bind mounts (subPath: a path inside the volume)."""
    result = []
    for mount in container.get("volumeMounts") or []:
        if mount["name"] not in volume_dirs:
            raise ConfigError(f"volumeMount {mount['name']!r}: no such volume")
        source = volume_dirs[mount["name"]]
        if mount.get("subPath"):
            source = os.path.join(source, mount["subPath"])
        result.append(Mount(source, mount["mountPath"], bool(mount.get("readOnly"))))
    return result


# ---------------------------------------------------------------- identity and the wrapper


@dataclass(frozen=True)
class Identity:
    """Who the process runs as, from the pod's and container's securityContext and the image's USER."""

    uid: int
    gid: int
    groups: tuple[int, ...] = ()
    no_new_privs: bool = False
    drop_all_caps: bool = False
    read_only_root: bool = False


def identity(pod: Pod, container: Container, image: LocalImage | None) -> Identity:
    pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
    sc = container.get("securityContext") or {}

    def pick(key: str) -> Any:
        return sc[key] if key in sc else pod_sc.get(key)

    uid = pick("runAsUser")
    if uid is None:
        uid = image.user if image and image.user is not None else 0
    gid = pick("runAsGroup")
    if gid is None:
        gid = uid if image and image.user is not None and pick("runAsUser") is None else 0
    if pick("runAsNonRoot") and uid == 0:
        raise ConfigError("container has runAsNonRoot and image will run as root")
    groups = [*(pod_sc.get("supplementalGroups") or [])]
    if pod_sc.get("fsGroup") is not None:
        groups.append(pod_sc["fsGroup"])
    drop = [c.upper() for c in (sc.get("capabilities") or {}).get("drop") or []]
    return Identity(
        uid=int(uid),
        gid=int(gid),
        groups=tuple(sorted(set(int(g) for g in groups))),
        no_new_privs=sc.get("allowPrivilegeEscalation") is False,
        drop_all_caps="ALL" in drop,
        read_only_root=bool(sc.get("readOnlyRootFilesystem")),
    )


@dataclass(frozen=True)
class Tools:
    """Absolute paths of the host tools the wrapper uses (the container's PATH may lack them)."""

    ip: str = "/usr/sbin/ip"
    unshare: str = "/usr/bin/unshare"
    sh: str = "/bin/sh"
    mkdir: str = "/bin/mkdir"
    mount: str = "/bin/mount"
    hostname: str = "/bin/hostname"
    setpriv: str = "/usr/bin/setpriv"
    touch: str = "/usr/bin/touch"
    nsenter: str = "/usr/bin/nsenter"

    @classmethod
    def find(cls) -> Tools:
        """The tools as found on PATH (falling back to the Debian locations)."""
        defaults = cls()
        return cls(**{f.name: shutil.which(os.path.basename(getattr(defaults, f.name))) or getattr(defaults, f.name)
                      for f in dataclasses.fields(cls)})


def _overlay_roots(targets: list[str], avoid: str) -> list[str]:
    """Existing directories to cover with an overlay so that the missing mount points can be made in it.

    For each missing target, its deepest existing ancestor (symlinks resolved, so /var/run is /run);
    an ancestor inside another one is covered by that one. `/` itself, and any ancestor of `avoid` (the
    runner's own files, which an overlay would hide), is left out: its mount points are made on the host.
    """
    roots: set[str] = set()
    for target in targets:
        path = os.path.realpath(target)
        if os.path.lexists(path):
            continue
        parent = path
        while not os.path.isdir(parent):
            parent = os.path.dirname(parent)
        if parent != "/" and not (avoid + "/").startswith(parent + "/"):
            roots.add(parent)
    return sorted(r for r in roots if not any(r != o and r.startswith(o + "/") for o in roots))


def wrapper_argv(
    *, netns: str, host: str, mounts_: list[Mount], who: Identity, workdir: str, argv: list[str], tools: Tools,
    scratch: str,
) -> list[str]:
    """argv that runs `argv` as a container would: in the pod's network namespace, with its own mount
    and UTS namespaces (volumes bind-mounted at their mountPaths, the pod's hostname, optionally a
    read-only root), as the container's user, killed if the runner dies.

    Every step execs the next, so the pid the runner starts is the container's main process.
    A mount point that does not exist on the host is made inside an overlay of its nearest existing
    directory (upper layer in `scratch`), so the host's file system is never changed.
    """
    q = shlex.quote
    lines = ["set -e", f"{q(tools.hostname)} {q(host)}"]
    roots = _overlay_roots([m.target for m in mounts_], scratch)
    for n, root in enumerate(roots):
        upper, work = f"{scratch}/overlay{n}/upper", f"{scratch}/overlay{n}/work"
        lines.append(f"{q(tools.mkdir)} -p {q(upper)} {q(work)}")
        lines.append(f"{q(tools.mount)} -t overlay overlay -o {q(f'lowerdir={root},upperdir={upper},workdir={work}')} "
                     f"{q(root)}")
    for m in mounts_:
        if os.path.isdir(m.source):
            lines.append(f"{q(tools.mkdir)} -p {q(m.target)}")
        else:
            lines.append(f"[ -e {q(m.target)} ] || {{ {q(tools.mkdir)} -p {q(os.path.dirname(m.target))}; "
                         f"{q(tools.touch)} {q(m.target)}; }}")
        lines.append(f"{q(tools.mount)} --bind {q(m.source)} {q(m.target)}")
        if m.read_only:
            lines.append(f"{q(tools.mount)} -o remount,bind,ro {q(m.target)}")
    if who.read_only_root:
        for root in ["/", *roots]:
            lines.append(f"{q(tools.mount)} -o remount,ro {q(root)}" if root != "/" else
                         f"{q(tools.mount)} -o remount,bind,ro /")
    lines.append(f"cd {q(workdir)}")
    priv = [tools.setpriv, f"--reuid={who.uid}", f"--regid={who.gid}"]
    priv += [f"--groups={','.join(map(str, who.groups))}"] if who.groups else ["--clear-groups"]
    if who.no_new_privs:
        priv.append("--no-new-privs")
    if who.drop_all_caps:
        priv += ["--inh-caps=-all", "--bounding-set=-all"]
    priv += ["--pdeathsig=SIGKILL", "--"]
    lines.append("exec " + " ".join(q(p) for p in priv) + ' "$@"')
    script = "\n".join(lines)
    return [
        tools.ip, "netns", "exec", netns,
        tools.unshare, "--mount", "--uts", "--propagation", "private", "--",
        tools.sh, "-c", script, "container", *argv,
    ]
