"""The leader Service (pod annotation `elector.dev/leader-service: <service>`), as pure bodies.

The Service has no selector; its one EndpointSlice, `<service>-leader`, is ours. The controller points
it at the Lease holder (its IP and the Service's target ports) when a term begins, in one update: the old
leader keeps answering "not the leader" until then (an empty slice would refuse connections, and a second
update would wait for kube-proxy's minimum sync period). When the election has no valid holder (the
Lease expired or was released with no one taking it within a lease duration) the slice is emptied, so
that it never names a pod that is gone. kube-proxy follows the slice directly (what Patroni does with
the Endpoints of its primary's Service).
"""
from __future__ import annotations

from typing import Any, Optional


__all__ = ["slice_for", "slice_name", "names_pod", "SliceError", "MANAGED_BY"]

MANAGED_BY = "kube-elector.dev"


class SliceError(Exception):
    """The Service cannot be routed to the leader (missing, has a selector, or a named targetPort)."""


def slice_name(service: str) -> str:
    """The one EndpointSlice of the Service that we own; truncated to the API's 253-character limit."""
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
