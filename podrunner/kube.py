"""The few API calls a kubelet makes, over httpx, authenticated from a kubeconfig."""

from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

__all__ = ["Api", "ApiError", "Gone", "load_kubeconfig", "now_rfc3339"]


class ApiError(RuntimeError):
    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


class Gone(ApiError):
    """410: the watch's resourceVersion is too old; list again."""


def now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _blob(user_or_cluster: dict[str, Any], key: str, base: Path) -> bytes | None:
    if user_or_cluster.get(f"{key}-data"):
        return base64.b64decode(user_or_cluster[f"{key}-data"])
    if user_or_cluster.get(key):
        return (base / user_or_cluster[key]).read_bytes()
    return None


def load_kubeconfig(path: Path) -> tuple[str, ssl.SSLContext, dict[str, str]]:
    """(server, TLS context, extra headers) for the current context: client certs or a bearer token."""
    path = Path(path)
    config = yaml.safe_load(path.read_text())
    current = config.get("current-context")
    context = next(c["context"] for c in config["contexts"] if c["name"] == current)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    user = next((u["user"] for u in config.get("users") or [] if u["name"] == context.get("user")), {})
    ca = _blob(cluster, "certificate-authority", path.parent)
    tls = ssl.create_default_context(cadata=ca.decode() if ca else None)
    cert, key = _blob(user, "client-certificate", path.parent), _blob(user, "client-key", path.parent)
    if cert and key:
        # ssl wants files: write both to a private temporary directory for the duration of the load.
        with tempfile.TemporaryDirectory(prefix="podrunner-") as tmp:
            cert_path, key_path = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
            for target, data in ((cert_path, cert), (key_path, key)):
                fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
            tls.load_cert_chain(cert_path, key_path)
    headers = {"Authorization": f"Bearer {user['token']}"} if user.get("token") else {}
    return cluster["server"], tls, headers


class Api:
    """An async client for the pod runner's calls (an admin kubeconfig is assumed)."""

    def __init__(self, kubeconfig: Path, *, timeout: float = 10.0):
        self.server, tls, headers = load_kubeconfig(kubeconfig)
        parts = urlsplit(self.server)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 443
        self.client = httpx.AsyncClient(
            base_url=self.server, verify=tls, timeout=timeout, trust_env=False,
            headers={"Accept": "application/json", **headers},
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def _call(self, method: str, path: str, *, ok: tuple[int, ...] = (), **kwargs: Any) -> httpx.Response:
        response = await self.client.request(method, path, **kwargs)
        if response.is_error and response.status_code not in ok:
            raise ApiError(f"{method} {path}: {response.status_code} {response.text[:300]}", response.status_code)
        return response

    async def get(self, path: str) -> dict[str, Any] | None:
        """The object, or None on 404."""
        response = await self._call("GET", path, ok=(404,))
        return None if response.status_code == 404 else response.json()

    async def bind(self, namespace: str, name: str, uid: str, node: str) -> bool:
        """POST pods/binding (what a scheduler does); False if already bound or gone."""
        body = {
            "apiVersion": "v1", "kind": "Binding", "metadata": {"name": name, "uid": uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        response = await self._call("POST", f"/api/v1/namespaces/{namespace}/pods/{name}/binding", json=body,
                                    ok=(404, 409))
        return response.status_code == 201

    async def patch_status(self, namespace: str, name: str, uid: str, status: dict[str, Any]) -> bool:
        """Merge-patch the status subresource; the uid guards against a new pod of the same name. False if gone."""
        response = await self._call(
            "PATCH", f"/api/v1/namespaces/{namespace}/pods/{name}/status",
            content=json.dumps({"metadata": {"uid": uid}, "status": status}),
            headers={"Content-Type": "application/merge-patch+json"}, ok=(404, 409),
        )
        return response.status_code == 200

    async def delete_pod(self, namespace: str, name: str, uid: str, *, grace: int = 0) -> None:
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": grace,
                "preconditions": {"uid": uid}}
        await self._call("DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}", json=body, ok=(404, 409))

    async def token(self, namespace: str, service_account: str, *, audience: str, seconds: int,
                    pod: str, pod_uid: str) -> tuple[str, float]:
        """A TokenRequest bound to the pod, as the kubelet makes: (token, seconds until it expires)."""
        spec: dict[str, Any] = {
            "expirationSeconds": seconds,
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod, "uid": pod_uid},
        }
        if audience:
            spec["audiences"] = [audience]
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        response = await self._call(
            "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token", json=body)
        return str(response.json()["status"]["token"]), float(seconds)

    async def event(self, pod: dict[str, Any], reason: str, message: str, *, kind: str = "Normal",
                    source: str = "podrunner") -> None:
        """A core/v1 Event on the pod (what `kubectl describe pod` shows); failures are ignored."""
        meta = pod["metadata"]
        body = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"],
                               "namespace": meta["namespace"], "uid": meta["uid"]},
            "reason": reason, "message": message, "type": kind,
            "source": {"component": source, "host": (pod.get("spec") or {}).get("nodeName", "")},
            "firstTimestamp": now_rfc3339(), "lastTimestamp": now_rfc3339(), "count": 1,
        }
        try:
            await self.client.post(f"/api/v1/namespaces/{meta['namespace']}/events", json=body)
        except httpx.HTTPError:
            pass

    async def ensure_node(self, name: str, *, cpu: int, memory: int, pods: int = 110) -> None:
        """Register the Node the runner binds pods to, with a Ready condition (nothing else heartbeats it)."""
        node = {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                                   "node.kubernetes.io/instance-type": "podrunner"}},
        }
        await self._call("POST", "/api/v1/nodes", json=node, ok=(409,))
        now = now_rfc3339()
        resources = {"cpu": str(cpu), "memory": str(memory), "pods": str(pods)}
        status = {
            "capacity": resources, "allocatable": resources,
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": name}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "PodRunnerReady",
                            "message": "the local pod runner serves this node", "lastHeartbeatTime": now,
                            "lastTransitionTime": now}],
            "nodeInfo": {"kubeletVersion": "podrunner", "kubeProxyVersion": "", "operatingSystem": "linux",
                         "architecture": os.uname().machine, "containerRuntimeVersion": "podrunner://processes",
                         "kernelVersion": os.uname().release, "osImage": "local processes", "machineID": "",
                         "systemUUID": "", "bootID": ""},
        }
        await self._call("PATCH", f"/api/v1/nodes/{name}/status", content=json.dumps({"status": status}),
                         headers={"Content-Type": "application/merge-patch+json"})

    async def delete_node(self, name: str) -> None:
        await self._call("DELETE", f"/api/v1/nodes/{name}", ok=(404,))

    async def list(self, path: str) -> tuple[list[dict[str, Any]], str]:
        data = (await self._call("GET", path)).json()
        return data.get("items") or [], data["metadata"]["resourceVersion"]

    async def watch(self, path: str, resource_version: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """(type, object) events until the server ends the watch; raises Gone on 410."""
        params = {"watch": "true", "resourceVersion": resource_version, "allowWatchBookmarks": "true",
                  "timeoutSeconds": "300"}
        async with self.client.stream("GET", path, params=params, timeout=httpx.Timeout(10.0, read=330.0)) as stream:
            if stream.status_code == 410:
                raise Gone("watch: 410", 410)
            if stream.is_error:
                await stream.aread()
                raise ApiError(f"watch {path}: {stream.status_code} {stream.text[:300]}", stream.status_code)
            async for line in stream.aiter_lines():
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    code = (event.get("object") or {}).get("code", 0)
                    if code == 410:
                        raise Gone("watch: 410", 410)
                    raise ApiError(f"watch {path}: {event.get('object')}", code)
                yield event["type"], event["object"]
