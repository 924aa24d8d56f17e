"""The controller's calls to the API server, through the `kubernetes` client's connection handling
(in-cluster config, kubeconfig, TLS, token refresh) but with plain dicts: no typed models are built,
and watch lines are decoded as they come.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterator, Optional
from urllib.parse import quote, urlencode

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

__all__ = ["Api", "KubeError", "connect", "path"]

log = logging.getLogger("kube_elector.controller")


class KubeError(Exception):
    """An API call failed; `status` is the HTTP status (0: no answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def connect(kubeconfig: Optional[Path]) -> client.ApiClient:
    if kubeconfig:
        return config.new_client_from_config(config_file=str(kubeconfig))
    cfg = client.Configuration()
    config.load_incluster_config(client_configuration=cfg)
    return client.ApiClient(cfg)


def path(group_version: str, resource: str, namespace: str = "", name: str = "") -> str:
    """`/api/v1/namespaces/ns/pods/name` or `/apis/<group>/<version>/...`; names are quoted."""
    base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    if namespace:
        base += f"/namespaces/{quote(namespace)}"
    base += f"/{resource}"
    return base + (f"/{quote(name)}" if name else "")


class Api:
    def __init__(self, api: client.ApiClient, *, timeout: float = 10.0) -> None:
        self._api = api
        self._timeout = timeout

    def _send(self, method: str, url: str, body: Any, content_type: str, timeout: Any) -> Any:
        try:
            request = self._api.param_serialize(
                method, url, header_params={"Content-Type": content_type, "Accept": "application/json"},
                body=body, auth_settings=["BearerToken"],
            )
            return self._api.call_api(*request, _request_timeout=timeout)
        except ApiException as exc:
            raise KubeError(exc.status or 0, f"{method} {url}: {exc.status} {exc.reason}") from None
        except Exception as exc:  # urllib3 connection errors and the like
            raise KubeError(0, f"{method} {url}: {exc}") from None

    def call(self, method: str, url: str, body: Any = None, *, content_type: str = "application/json",
             query: Optional[dict[str, str]] = None) -> Any:
        """The decoded JSON answer; KubeError on any non-2xx status or connection failure."""
        if query:
            url += "?" + urlencode(query)
        response = self._send(method, url, body, content_type, self._timeout)
        try:
            data = response.read()
        except Exception as exc:
            raise KubeError(0, f"{method} {url}: {exc}") from None
        text = data.decode(errors="replace") if data else ""
        if not 200 <= response.status < 300:
            raise KubeError(response.status, f"{method} {url}: {response.status} {text[:300]}")
        return json.loads(text) if text else None

    def get(self, url: str) -> Optional[dict[str, Any]]:
        """The object, or None when it does not exist."""
        try:
            return self.call("GET", url)
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    def delete(self, url: str) -> None:
        """Delete in the background (dependents go with it); gone already is fine."""
        try:
            self.call("DELETE", url, {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"})
        except KubeError as exc:
            if exc.status != 404:
                raise

    def merge_patch(self, url: str, body: dict[str, Any]) -> Any:
        return self.call("PATCH", url, body, content_type="application/merge-patch+json")

    def watch(self, url: str, query: dict[str, str]) -> Iterator[dict[str, Any]]:
        """Watch events ({"type", "object"}) until the server ends the watch; KubeError on failure."""
        seconds = int(query.get("timeoutSeconds", "300"))
        url += "?" + urlencode({**query, "watch": "true", "allowWatchBookmarks": "true"})
        response = self._send("GET", url, None, "application/json", (10, seconds + 30))
        raw = response.response
        try:
            if not 200 <= response.status < 300:
                raise KubeError(response.status, f"watch {url}: {response.status}")
            pending = b""
            for chunk in raw.stream(64 * 1024, decode_content=True):
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        except KubeError:
            raise
        except Exception as exc:  # the connection broke or the read timed out
            raise KubeError(0, f"watch {url}: {exc}") from None
        finally:
            raw.release_conn()
