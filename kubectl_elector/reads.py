"""What the status view reads from the API server: GET and LIST only (ClusterRole kube-elector-status).

Per refresh: LIST the Leases kube-elector labels (`app.kubernetes.io/managed-by=kube-elector`), LIST
the Pods the webhook labels with their election (`elector.dev/election`), LIST the `LeaderElection`
Events of Leases; and GET the Lease of each election whose candidates exist but whose Lease is not
labelled (written before the label existed, or missing). Events are optional: without `events: list`
the transitions column shows "?".
"""
from __future__ import annotations

import dataclasses
import datetime
import urllib.parse
from typing import Any, Optional

from elector.kube import httpclient
from elector.kube import leaselock

__all__ = ["Snapshot", "ReadError", "snapshot", "ELECTION_LABEL"]

ELECTION_LABEL = "elector.dev/election"  # set on every injected pod by the webhook


class ReadError(Exception):
    """The API server refused or failed a read; the message says which and why."""


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """Plain API objects as read at `taken` (wall clock of this machine)."""

    leases: list[dict[str, Any]]
    pods: list[dict[str, Any]]
    events: Optional[list[dict[str, Any]]]  # None: not allowed to list Events
    taken: datetime.datetime


def _scope(namespace: Optional[str]) -> str:
    return f"/namespaces/{urllib.parse.quote(namespace)}" if namespace else ""


async def _get(client: httpclient.Client, path: str, *, missing_ok: bool = False,
               forbidden_ok: bool = False) -> Optional[dict[str, Any]]:
    try:
        response = await client.request("GET", path)
    except httpclient.TransportError as exc:
        raise ReadError(f"cannot reach the API server: {exc}") from exc
    if response.status == 404 and missing_ok or response.status == 403 and forbidden_ok:
        return None
    if response.status != 200:
        try:
            message = str(response.json().get("message", ""))
        except (ValueError, AttributeError):
            message = response.body[:200].decode("utf-8", "replace")
        raise ReadError(f"GET {path}: HTTP {response.status}: {message}")
    body = response.json()
    return body if isinstance(body, dict) else {}


def _query(**params: str) -> str:
    return "?" + urllib.parse.urlencode(params)


async def snapshot(client: httpclient.Client, *, namespace: Optional[str], election: Optional[str]) -> Snapshot:
    """Read everything one refresh needs; `namespace` None means all namespaces. Raises `ReadError`."""
    scope = _scope(namespace)
    leases_path = f"/apis/coordination.k8s.io/v1{scope}/leases"
    pods_selector = f"{ELECTION_LABEL}={election}" if election else ELECTION_LABEL
    pods = (await _get(client, f"/api/v1{scope}/pods" + _query(labelSelector=pods_selector)) or {}).get("items") or []
    if election and namespace:
        one = await _get(client, f"{leases_path}/{urllib.parse.quote(election)}", missing_ok=True)
        leases = [one] if one else []
    else:
        listed = await _get(client, leases_path + _query(labelSelector="=".join(leaselock.MANAGED_BY)))
        leases = [lease for lease in (listed or {}).get("items") or []
                  if not election or lease["metadata"]["name"] == election]
    known = {(lease["metadata"]["namespace"], lease["metadata"]["name"]) for lease in leases}
    wanted = {(pod["metadata"]["namespace"], (pod["metadata"].get("labels") or {}).get(ELECTION_LABEL, ""))
              for pod in pods}
    for ns, name in sorted(wanted - known):
        if name:
            found = await _get(client, f"/apis/coordination.k8s.io/v1{_scope(ns)}/leases/{urllib.parse.quote(name)}",
                               missing_ok=True)
            leases += [found] if found else []
    listed_events = await _get(client, f"/api/v1{scope}/events" + _query(
        fieldSelector="reason=LeaderElection,involvedObject.kind=Lease"), forbidden_ok=True)
    events = None if listed_events is None else listed_events.get("items") or []
    return Snapshot(leases=leases, pods=pods, events=events, taken=datetime.datetime.now(datetime.timezone.utc))
