"""Registering a mutating webhook and waiting until the apiserver really calls it.

The apiserver learns about webhook configurations through an informer, so a pod
created right after the MutatingWebhookConfiguration may go through unmutated.
Kubernetes' e2e tests dry-run a "marker" object until the webhook is seen to
answer; this does the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from localplane.controlplane import plane as plane_

__all__ = ["register_mutating_webhook", "wait_until_called", "WebhookNotCalled"]

_PATH = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"


class WebhookNotCalled(TimeoutError):
    """The marker dry-run never showed the webhook's answer within the timeout."""


def register_mutating_webhook(
    plane: plane_.ControlPlane,
    config: dict[str, Any],
    *,
    marker_pod: dict[str, Any],
    marker_namespace: str,
    is_called: Callable[[dict[str, Any]], bool],
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Create or replace the MutatingWebhookConfiguration, then dry-run-create marker_pod until is_called.

    `config` already holds clientConfig.url and caBundle. `is_called` gets the dry-run's JSON answer
    (the mutated Pod, or a Status when admission failed). Returns that answer; raises WebhookNotCalled.
    """
    name = config["metadata"]["name"]
    with plane.client() as api:
        current = api.get(f"{_PATH}/{name}")
        if current.status_code == 404:
            _expect_ok(api.post(_PATH, json=config), f"create {name}")
        else:
            _expect_ok(current, f"get {name}")
            body = {
                **config,
                "metadata": {
                    **config["metadata"],
                    "resourceVersion": current.json()["metadata"]["resourceVersion"],
                },
            }
            _expect_ok(api.put(f"{_PATH}/{name}", json=body), f"replace {name}")
    return wait_until_called(
        plane, marker_pod=marker_pod, marker_namespace=marker_namespace, is_called=is_called, timeout=timeout
    )


def wait_until_called(
    plane: plane_.ControlPlane,
    *,
    marker_pod: dict[str, Any],
    marker_namespace: str,
    is_called: Callable[[dict[str, Any]], bool],
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Dry-run-create marker_pod until `is_called(answer)`; returns that answer, or raises WebhookNotCalled."""
    deadline = time.monotonic() + timeout
    answer: dict[str, Any] = {}
    with plane.client() as api:
        while time.monotonic() < deadline:
            response = api.post(
                f"/api/v1/namespaces/{marker_namespace}/pods", params={"dryRun": "All"}, json=marker_pod
            )
            answer = response.json()
            if is_called(answer):
                return answer
            time.sleep(0.2)
    raise WebhookNotCalled(f"webhook not called within {timeout:.0f} s; last dry-run answer: {answer}")


def _expect_ok(response: httpx.Response, what: str) -> None:
    if response.is_error:
        raise plane_.ControlPlaneError(f"{what}: {response.status_code} {response.text}")
