"""The webhook's only contact with the Kubernetes API: its TLS Secret and its caBundle.

Used only in cert_mode self-managed (tls.SelfManagedSource); with cert_mode files the webhook
has no API client at all. The webhook never writes anything else: an admission request is
unauthenticated, so it must not cause a write (docs/security.md). RBAC for the elections is the
kube-elector controller's (controller/).

Bodies are plain dicts (never typed models); errors become `KubeError` with the HTTP status. The
controller builds on `Api` (controller/kube.py: reads that may find nothing, deletes, patches, watches).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException


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
    """Plain-dict calls through the client's connection handling (config, TLS, token refresh)."""

    def __init__(self, api: client.ApiClient, *, timeout: float = 10.0) -> None:
        self._api = api
        self._timeout = timeout

    def _send(self, method: str, path: str, body: Any, content_type: str, timeout: Any) -> Any:
        """The client's raw response (its body not read); KubeError when no answer came."""
        try:
            request = self._api.param_serialize(
                method, path, header_params={"Content-Type": content_type, "Accept": "application/json"},
                body=body, auth_settings=["BearerToken"],
            )
            return self._api.call_api(*request, _request_timeout=timeout)
        except ApiException as exc:
            raise KubeError(exc.status or 0, f"{method} {path}: {exc.status} {exc.reason}") from None
        except Exception as exc:  # urllib3 connection errors and the like
            raise KubeError(0, f"{method} {path}: {exc}") from None

    def call(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
             query: dict[str, str] | None = None) -> Any:
        """The decoded JSON answer; KubeError on any non-2xx status or connection failure."""
        if query:
            path += "?" + urlencode(query)
        response = self._send(method, path, body, content_type, self._timeout)
        try:
            data = response.read()
        except Exception as exc:
            raise KubeError(0, f"{method} {path}: {exc}") from None
        text = data.decode(errors="replace") if data else ""
        if not 200 <= response.status < 300:
            raise KubeError(response.status, f"{method} {path}: {response.status} {text[:500]}")
        return json.loads(text) if text else None


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
