"""Who owns the Lease: every candidate's Pod, so the garbage collector deletes the Lease once no Pod of
the election exists, and never while one does (pure, no I/O).

The garbage collector deletes a dependent only when all of its owners are gone, and removes the
references to owners that are gone while another remains (tests/election/test_ownership.py shows both
on the real kube-controller-manager). A single owner, the leader, as the NAIS elector does, is not
enough here: leadership moves, and the Lease would go with the first leader's Pod.

The reference comes from the downward API (POD_NAME, POD_UID): no `pods` permission is needed. A uid
that is not a Pod's (not a UUID) turns ownership off; a wrong one would let the garbage collector
delete a live election's Lease, so outside a Pod leave POD_UID unset.
"""
from __future__ import annotations

import copy
import re
from typing import Any, Optional

__all__ = ["MANAGED_BY", "pod_reference", "owned", "stamped"]

MANAGED_BY = ("app.kubernetes.io/managed-by", "kube-elector")  # label on every Lease we write
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

OwnerReference = dict[str, Any]


def pod_reference(name: str, uid: str) -> Optional[OwnerReference]:
    """The ownerReference to our Pod, or None (no ownership) unless `uid` looks like a Pod's uid.

    Neither `controller` (the Lease has many owners, none of them its controller) nor
    `blockOwnerDeletion` (a Pod's deletion must never wait for its Lease) is set.
    """
    if not name or not _UUID.match(uid.lower()):
        return None
    return {"apiVersion": "v1", "kind": "Pod", "name": name, "uid": uid}


def _references(lease: dict[str, Any]) -> list[OwnerReference]:
    return list((lease.get("metadata") or {}).get("ownerReferences") or [])


def owned(lease: dict[str, Any], ref: Optional[OwnerReference]) -> bool:
    """True if `ref` is among the Lease's owners, or there is no reference to add."""
    return ref is None or any(r.get("uid") == ref["uid"] for r in _references(lease))


def stamped(lease: dict[str, Any], ref: Optional[OwnerReference]) -> dict[str, Any]:
    """A copy of the Lease object with our managed-by label and, if missing, our ownerReference.

    Others' references are kept as they are: the garbage collector prunes those of deleted Pods.
    """
    out = copy.deepcopy(lease)
    meta = out.setdefault("metadata", {})
    labels = meta.get("labels") or {}
    meta["labels"] = {**labels, MANAGED_BY[0]: MANAGED_BY[1]}
    if ref is not None and not owned(out, ref):
        meta["ownerReferences"] = [*_references(out), dict(ref)]
    return out
