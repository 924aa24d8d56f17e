"""Upgrading from 0.1: the RoleBindings its webhook made are deleted once nothing needs them.

0.1's webhook bound each injected pod's ServiceAccount to the ClusterRoles kube-elector-election,
-rollout, -leader-label and -leader-service (RoleBindings `kube-elector-<sa>[-<feature>]`, label
app.kubernetes.io/managed-by: kube-elector). 0.2 keeps those ClusterRoles (manifests/rbac-legacy.yaml) so
that pods injected by 0.1 keep electing during the upgrade; the controller deletes a binding as soon as
no pod of its ServiceAccount injected by 0.1 (annotation elector.dev/injected: "0.1.0") is left in its
namespace. 0.3 removes the ClusterRoles.
"""
from __future__ import annotations

import logging
from typing import Any, Iterable

from controller.kube import Api, KubeError, path

__all__ = ["LEGACY_ROLES", "injected_by_0_1", "stale", "sweep"]

log = logging.getLogger("kube_elector.controller")
LEGACY_ROLES = frozenset({"kube-elector-election", "kube-elector-rollout", "kube-elector-leader-label",
                          "kube-elector-leader-service"})
LEGACY_VERSION = "0.1.0"
INJECTED = "elector.dev/injected"


def injected_by_0_1(pod: dict[str, Any]) -> bool:
    """A pod injected by 0.1 still elects through the legacy ClusterRoles: its ServiceAccount's binding must stay."""
    return ((pod.get("metadata") or {}).get("annotations") or {}).get(INJECTED) == LEGACY_VERSION


def stale(bindings: Iterable[dict[str, Any]], pods: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """(namespace, name) of the 0.1 RoleBindings whose ServiceAccount has no 0.1-injected pod left."""
    in_use = {((pod.get("metadata") or {}).get("namespace"), (pod.get("spec") or {}).get("serviceAccountName")
               or "default") for pod in pods if injected_by_0_1(pod)}
    out = []
    for binding in bindings:
        meta, ref = binding.get("metadata") or {}, binding.get("roleRef") or {}
        if ref.get("kind") != "ClusterRole" or ref.get("name") not in LEGACY_ROLES:
            continue
        accounts = {(s.get("namespace"), s.get("name")) for s in binding.get("subjects") or []
                    if s.get("kind") == "ServiceAccount"}
        if not accounts & in_use:
            out.append((str(meta.get("namespace")), str(meta.get("name"))))
    return out


def sweep(api: Api, pods: Iterable[dict[str, Any]]) -> int:
    """One pass over the cluster's 0.1 RoleBindings; returns how many were deleted."""
    found = api.call("GET", path("rbac.authorization.k8s.io/v1", "rolebindings"),
                     query={"labelSelector": "app.kubernetes.io/managed-by=kube-elector"})
    deleted = 0
    for namespace, name in stale(found.get("items") or [], pods):
        try:
            api.delete(path("rbac.authorization.k8s.io/v1", "rolebindings", namespace, name))
        except KubeError as exc:
            log.warning("0.1 rolebinding not deleted", extra={"event": "legacy_delete_failed",
                                                              "namespace": namespace, "rolebinding": name,
                                                              "error": str(exc)})
            continue
        deleted += 1
        log.info("0.1 rolebinding deleted", extra={"event": "legacy_deleted", "namespace": namespace,
                                                   "rolebinding": name})
    return deleted
