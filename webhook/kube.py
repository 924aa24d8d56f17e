"""The webhook's only contact with the Kubernetes API: RoleBindings, its Secret, its caBundle.

Bodies are plain dicts (never typed models); errors become `KubeError` with the HTTP status.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from webhook.handler import Binding

log = logging.getLogger("kube_elector.webhook")


class KubeError(Exception):
    """An API call failed; `status` is the HTTP status (0: no answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def connect(kubeconfig: Path | None) -> client.ApiClient:
    if kubeconfig:
        return config.new_client_from_config(config_file=str(kubeconfig))
    cfg = client.Configuration()
    config.load_incluster_config(client_configuration=cfg)
    return client.ApiClient(cfg)


class Api:
    def __init__(self, api: client.ApiClient) -> None:
        self._api = api

    def call(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json") -> Any:
        """The decoded JSON answer; KubeError on any non-2xx status or connection failure."""
        try:
            request = self._api.param_serialize(
                method, path, header_params={"Content-Type": content_type, "Accept": "application/json"},
                body=body, auth_settings=["BearerToken"],
            )
            response = self._api.call_api(*request, _request_timeout=10)
            response.read()
        except ApiException as exc:
            raise KubeError(exc.status or 0, f"{method} {path}: {exc.status} {exc.reason}") from None
        except Exception as exc:  # urllib3 connection errors and the like
            raise KubeError(0, f"{method} {path}: {exc}") from None
        text = response.data.decode(errors="replace") if response.data else ""
        if not 200 <= response.status < 300:
            raise KubeError(response.status, f"{method} {path}: {response.status} {text[:500]}")
        return json.loads(text) if text else None


#: The ClusterRole of each feature a pod may use (manifests/rbac-election.yaml); inject.mutate
#: picks them: "rollout" unless the pod opts out, the others only when it asks.
FEATURE_ROLES = {
    "leader-service": "kube-elector-leader-service",
    "leader-label": "kube-elector-leader-label",
    "rollout": "kube-elector-rollout",
}


class RoleBindings:
    """Makes sure each injected pod's ServiceAccount may run its election (and its features).

    One RoleBinding per (namespace, ServiceAccount) to the election ClusterRole, plus one per
    feature the pod uses (rollout awareness unless it opts out, the others when asked for). The
    webhook holds only `create` on rolebindings and `bind` on those shipped ClusterRoles.
    """

    def __init__(self, api: Api, cluster_role: str) -> None:
        self._api = api
        self._role = cluster_role
        self._done: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    def ensure(self, binding: Binding) -> None:
        wanted = [("", self._role)] + [(role, FEATURE_ROLES[role]) for role in binding.roles]
        for suffix, cluster_role in wanted:
            key = (binding.namespace, binding.service_account, cluster_role)
            with self._lock:
                if key in self._done:
                    continue
            if self._create(binding, cluster_role, suffix):
                with self._lock:
                    self._done.add(key)

    def _create(self, binding: Binding, cluster_role: str, suffix: str) -> bool:
        body = role_binding(binding, cluster_role, suffix=suffix)
        path = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{binding.namespace}/rolebindings"
        fields = {"namespace": binding.namespace, "service_account": binding.service_account, "role": cluster_role}
        try:
            self._api.call("POST", path, body)
            log.info("rolebinding created", extra={"event": "rolebinding_created", **fields})
        except KubeError as exc:
            if exc.status != 409:  # 409: it exists already
                log.error("rolebinding failed", extra={"event": "rolebinding_failed", **fields, "error": str(exc)})
                return False
        return True


def role_binding(binding: Binding, cluster_role: str, *, suffix: str = "") -> dict[str, Any]:
    name = f"kube-elector-{binding.service_account}" + (f"-{suffix}" if suffix else "")
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {
            "name": name[:253],
            "namespace": binding.namespace,
            "labels": {"app.kubernetes.io/managed-by": "kube-elector"},
        },
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
        "subjects": [{"kind": "ServiceAccount", "name": binding.service_account, "namespace": binding.namespace}],
    }


def ca_bundles(api: Api, name: str) -> list[str | None]:
    """The caBundle (PEM text) of each webhook in the MutatingWebhookConfiguration `name`."""
    mwc = api.call("GET", f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{name}")
    out: list[str | None] = []
    for hook in mwc.get("webhooks") or []:
        raw = (hook.get("clientConfig") or {}).get("caBundle")
        out.append(base64.b64decode(raw).decode() if raw else None)
    return out


def patch_ca_bundles(api: Api, name: str, ca_pem: bytes, count: int) -> None:
    encoded = base64.b64encode(ca_pem).decode()
    ops = [{"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": encoded} for i in range(count)]
    api.call("PATCH", f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{name}", ops,
             content_type="application/json-patch+json")
