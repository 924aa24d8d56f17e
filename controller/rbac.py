"""Per election, the objects that let exactly its candidates run it (pure bodies, no I/O).

- Role `kube-elector-lease-<election>`: get, update and watch on the one Lease `<election>`, by name.
  No `create` (RBAC cannot limit it by name: the controller creates the Lease instead), no list.
- RoleBinding of the same name: the ServiceAccounts of the election's pods.
- The Lease `<election>`, created free (no holder) before the candidates need it.

Ownership makes uninstalling safe and cleanup certain: the Role is owned by the election's pods, the
RoleBinding and the Lease by the Role. With or without the controller, the garbage collector removes all
three once the last pod is gone, and never while one exists. The ValidatingAdmissionPolicy
`kube-elector-controller-rbac` (manifests/) admits exactly these shapes from the controller's account.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

__all__ = ["PREFIX", "role_name", "role", "role_binding", "lease", "pod_owner", "MANAGED_BY", "ELECTION_LABEL"]

PREFIX = "kube-elector-lease-"
ELECTION_LABEL = "elector.dev/election"
MANAGED_BY = {"app.kubernetes.io/managed-by": "kube-elector"}
LEASE_VERBS = ["get", "update", "watch"]
RBAC = "rbac.authorization.k8s.io"


def role_name(election: str) -> str:
    """The name of both the Role and the RoleBinding of an election; the ValidatingAdmissionPolicy admits only it."""
    return PREFIX + election


def _labels(election: str) -> dict[str, str]:
    return {**MANAGED_BY, ELECTION_LABEL: election}


def pod_owner(pod: Mapping[str, Any]) -> dict[str, Any]:
    """A reference to a candidate pod; neither `controller` nor `blockOwnerDeletion` (a pod's deletion never
    waits for its election)."""
    meta = pod.get("metadata") or {}
    return {"apiVersion": "v1", "kind": "Pod", "name": meta.get("name", ""), "uid": meta.get("uid", "")}


def role(namespace: str, election: str, pods: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Owned by the election's pods, so the garbage collector deletes it with the last of them."""
    owners = sorted((pod_owner(p) for p in pods), key=lambda ref: (ref["name"], ref["uid"]))
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "Role",
        "metadata": {"name": role_name(election), "namespace": namespace, "labels": _labels(election),
                     "ownerReferences": owners},
        "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": list(LEASE_VERBS),
                   "resourceNames": [election]}],
    }


def service_accounts(pods: Iterable[Mapping[str, Any]]) -> list[str]:
    """The subjects to bind; a pod without a serviceAccountName runs as `default`."""
    return sorted({str((p.get("spec") or {}).get("serviceAccountName") or "default") for p in pods})


def _owned_by_role(owner_role: Mapping[str, Any]) -> list[dict[str, Any]]:
    meta = owner_role.get("metadata") or {}
    return [{"apiVersion": f"{RBAC}/v1", "kind": "Role", "name": meta.get("name", ""), "uid": meta.get("uid", "")}]


def role_binding(namespace: str, election: str, accounts: Iterable[str],
                 owner_role: Mapping[str, Any]) -> dict[str, Any]:
    """Owned by the Role (`owner_role` must carry its uid), so it goes when the Role goes."""
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "RoleBinding",
        "metadata": {"name": role_name(election), "namespace": namespace, "labels": _labels(election),
                     "ownerReferences": _owned_by_role(owner_role)},
        "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": role_name(election)},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace} for name in accounts],
    }


def lease(namespace: str, election: str, owner_role: Mapping[str, Any]) -> dict[str, Any]:
    """A free Lease: the first candidate's update makes it the holder (term 1)."""
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": election, "namespace": namespace, "labels": _labels(election),
                     "ownerReferences": _owned_by_role(owner_role)},
        "spec": {},
    }


def differs(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether an existing Role or RoleBinding must be updated to `wanted` (rules, subjects, owners, labels)."""
    for key in ("rules", "roleRef", "subjects"):
        if key in wanted and current.get(key) != wanted[key]:
            return True
    now_meta, want_meta = current.get("metadata") or {}, wanted.get("metadata") or {}
    owners = {(r.get("kind"), r.get("uid")) for r in now_meta.get("ownerReferences") or []}
    if owners != {(r.get("kind"), r.get("uid")) for r in want_meta.get("ownerReferences") or []}:
        return True
    labels = now_meta.get("labels") or {}
    return any(labels.get(k) != v for k, v in (want_meta.get("labels") or {}).items())
