"""Pods that already hold an `elector` container or the `elector-api-access` volume.

Ours from an earlier pass (`reinvocationPolicy: IfNeeded`): left as they are. Anyone else's: refused,
never adopted. Adopting them would run a container the pod author wrote under the elector's name (and
with the marker that says kube-elector put it there), or mount a volume the author chose where the
elector reads its token. The API server defaults fields after each webhook's patch, so a part of ours
may come back with those defaults added: they are the only differences accepted.
"""

from __future__ import annotations

from typing import Any

from webhook import options, sidecar

#: What the API server adds to an injected container or volume, with the only value accepted for each.
API_DEFAULTS: dict[str, Any] = {
    "terminationMessagePath": "/dev/termination-log",
    "successThreshold": 1,
    "scheme": "HTTP",
    "optional": False,
}

ACCEPTED = (f"no container named {sidecar.CONTAINER_NAME!r} and no volume named {sidecar.TOKEN_VOLUME!r} "
            "(kube-elector adds them), or exactly what kube-elector injects")


def difference(actual: Any, wanted: Any, where: str) -> str | None:
    """The first place where `actual` is not `wanted` (plus API defaults), e.g. `.securityContext.privileged`."""
    if isinstance(wanted, dict):
        if not isinstance(actual, dict):
            return where or "."
        for key, value in wanted.items():
            if key not in actual:
                return f"{where}.{key} (missing)"
            found = difference(actual[key], value, f"{where}.{key}")
            if found:
                return found
        for key in actual.keys() - wanted.keys():
            if key not in API_DEFAULTS or actual[key] != API_DEFAULTS[key]:
                return f"{where}.{key} (not injected by kube-elector)"
        return None
    if isinstance(wanted, list):
        if not isinstance(actual, list) or len(actual) != len(wanted):
            return where or "."
        for i, (a, w) in enumerate(zip(actual, wanted)):
            found = difference(a, w, f"{where}[{i}]")
            if found:
                return found
        return None
    return None if actual == wanted and type(actual) is type(wanted) else where or "."


def check(spec: dict[str, Any], container: dict[str, Any], volume: dict[str, Any], *, native: bool) -> bool:
    """Whether the pod already has our parts (True) or none of them (False); Refusal if anything differs."""
    where = "initContainers" if native else "containers"
    found = []
    for key in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(key) or []):
            if isinstance(c, dict) and c.get("name") == sidecar.CONTAINER_NAME:
                found.append((key, i, c))
    volumes = [v for v in spec.get("volumes") or [] if isinstance(v, dict) and v.get("name") == sidecar.TOKEN_VOLUME]
    if not found and not volumes:
        return False
    if len(found) > 1 or len(volumes) > 1:
        raise options.Refusal(f"spec.{where}", f"more than one {sidecar.CONTAINER_NAME!r} container or "
                              f"{sidecar.TOKEN_VOLUME!r} volume", ACCEPTED)
    if not found:
        raise options.Refusal(f"spec.volumes ({sidecar.TOKEN_VOLUME})", "the pod has this volume but no "
                              f"{sidecar.CONTAINER_NAME!r} container", ACCEPTED)
    key, i, actual = found[0]
    field = f"spec.{key}[{i}] ({sidecar.CONTAINER_NAME})"
    if key != where:
        raise options.Refusal(field, f"kube-elector injects it in spec.{where}", ACCEPTED)
    problem = difference(actual, container, "")
    if problem:
        raise options.Refusal(field, f"differs from what kube-elector injects at {problem}", ACCEPTED)
    if not volumes:
        raise options.Refusal(field, f"the pod has this container but no {sidecar.TOKEN_VOLUME!r} volume", ACCEPTED)
    problem = difference(volumes[0], volume, "")
    if problem:
        raise options.Refusal(f"spec.volumes ({sidecar.TOKEN_VOLUME})",
                              f"differs from what kube-elector injects at {problem}", ACCEPTED)
    return True
