"""One admission, start to end, without HTTP: body bytes in, AdmissionReview out.

Returns what the route must render plus what it must do afterwards (the RoleBinding),
so the route stays a thin adapter and this stays testable with plain bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from webhook import admission, inject, options
from webhook.settings import Settings


@dataclass(frozen=True)
class Binding:
    """A ServiceAccount whose elector needs the election ClusterRole in its namespace, and the
    ClusterRoles of the features its pod uses (`roles`, e.g. "rollout", "leader-service")."""

    namespace: str
    service_account: str
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    review: dict[str, Any]
    result: str  # metrics label: injected | skipped | denied | invalid
    reason: str
    election: str | None = None
    binding: Binding | None = None


def handle(request: admission.Request, *, namespace_opted_in: bool, settings: Settings) -> Outcome:
    if not request.is_pod_create:
        return Outcome(admission.allowed(request), "skipped", f"{request.operation} {request.kind.get('kind')}")
    problem = admission.check_pod(request.object)
    if problem:
        return Outcome(admission.denied(request, f"cannot read the pod: {problem}", code=400), "invalid", problem)
    pod = request.object
    namespace = request.namespace or (pod.get("metadata") or {}).get("namespace") or ""
    try:
        result = inject.mutate(pod, namespace=namespace, namespace_opted_in=namespace_opted_in, settings=settings)
    except options.Refusal as refusal:
        message = f"kube-elector cannot inject this pod: {refusal}"
        return Outcome(admission.denied(request, message), "denied", str(refusal))
    if result.pod is None:
        return Outcome(admission.allowed(request), "skipped", result.decision.reason)
    review = admission.patched(request, pod, result.pod, warnings=result.warnings)
    binding = None
    if settings.manage_role_bindings and not request.dry_run and result.service_account:
        binding = Binding(namespace, result.service_account, result.roles)
    return Outcome(review, "injected", result.decision.reason, election=result.election, binding=binding)
