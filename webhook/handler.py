"""One admission, start to end, without HTTP: body bytes in, AdmissionReview out.

Pure: the outcome is only what the route renders and counts. Nothing here (nor anywhere in the
webhook) writes to the cluster: an AdmissionReview reaches /mutate unauthenticated, so acting on
one would let any caller that can reach the Service cause the write (issue 20, docs/security.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from webhook import admission, inject, options
from webhook.settings import Settings


@dataclass(frozen=True)
class Outcome:
    """The review to send back, plus what the route logs and counts: it is the handler's only effect."""

    review: dict[str, Any]
    result: str  # metrics label: injected | skipped | denied | invalid
    reason: str
    election: str | None = None


def handle(request: admission.Request, *, namespace_opted_in: bool, settings: Settings) -> Outcome:
    """Every outcome is an answer: pods not to inject allowed unchanged, unreadable pods and refused options denied."""
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
    return Outcome(review, "injected", result.decision.reason, election=result.election)
