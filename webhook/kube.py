"""The webhook's only contact with the Kubernetes API: its TLS Secret and its caBundle.

Used only in cert_mode self-managed (tls.SelfManagedSource); with cert_mode files the webhook
has no API client at all. The webhook never writes anything else: an admission request is
unauthenticated, so it must not cause a write (docs/security.md). RBAC for the elections is the
kube-elector controller's (controller/).

Bodies are plain dicts; errors become `KubeError` with the HTTP status. The controller builds on `Api`
(controller/kube.py: reads that may find nothing, deletes, patches, watches). Stdlib HTTP over the
elector's credentials (elector/kube/kubeconfig.py: in-cluster, kubeconfig files, exec plugins, token
re-reads): the official client cost 126 MB on disk and most of the process's memory (its typed models
are imported with it) for a handful of plain-dict calls.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import threading
import time
import weakref
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from elector.kube import kubeconfig

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
MAX_IDLE = 4  # kept-alive connections per Api: the controller's few threads reuse them


class KubeError(Exception):
    """An API call failed; `status` is the HTTP status (0: no answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def connect(path: Path | None) -> kubeconfig.Credentials:
    """Credentials from a kubeconfig file, or in-cluster (ServiceAccount); raises kubeconfig.ConfigError."""
    if path:
        return kubeconfig.from_kubeconfig(str(path), now=time.monotonic)
    return kubeconfig.in_cluster(os.environ, sa_dir=SERVICE_ACCOUNT_DIR, now=time.monotonic)


# A kept-alive connection the server closed meanwhile fails like this on its next request; the request
# was not processed, so it is sent again once, on a new connection.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, http.client.BadStatusLine)


class Api:
    """Plain-dict calls over a small pool of kept-alive HTTP(S) connections; safe to share between threads."""

    def __init__(self, credentials: kubeconfig.Credentials, *, timeout: float = 10.0) -> None:
        self._credentials = credentials
        self._timeout = timeout
        url = urlsplit(credentials.server)
        self._https = url.scheme == "https"
        self._host, self._port = url.hostname or "", url.port or (443 if self._https else 80)
        self._prefix = url.path.rstrip("/")
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        # A forked worker (webhook/workers.py) must not share a kept-alive connection with its siblings.
        forget = weakref.WeakMethod(self._forget_connections)
        os.register_at_fork(after_in_child=lambda: (method := forget()) and method())

    def _forget_connections(self) -> None:
        self._lock = threading.Lock()
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _connection(self, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        """An idle connection (reused: True) or a new one, with `timeout` for every socket operation."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            if self._https:
                return http.client.HTTPSConnection(self._host, self._port, timeout=timeout,
                                                   context=self._credentials.ssl_context), False
            return http.client.HTTPConnection(self._host, self._port, timeout=timeout), False
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn, True

    def _release(self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse) -> None:
        """Back to the pool once its response was read whole, unless the server is closing it."""
        with self._lock:
            if not response.will_close and len(self._idle) < MAX_IDLE:
                self._idle.append(conn)
                return
        conn.close()

    def _send(self, method: str, path: str, body: Any, content_type: str,
              timeout: float) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """The connection and its response, the body not read; KubeError when no answer came."""
        headers = {"Accept": "application/json", "User-Agent": "kube-elector"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        try:
            token = self._credentials.token() if self._credentials.token else None
        except kubeconfig.ConfigError as exc:
            raise KubeError(0, f"{method} {path}: {exc}") from None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        while True:
            conn, reused = self._connection(timeout)
            try:
                conn.request(method, self._prefix + path, body=data, headers=headers)
                return conn, conn.getresponse()
            except _STALE as exc:
                conn.close()
                if not reused:
                    raise KubeError(0, f"{method} {path}: {exc!r}") from None
            except (OSError, http.client.HTTPException) as exc:  # refused, TLS, timeout
                conn.close()
                raise KubeError(0, f"{method} {path}: {exc!r}") from None

    def call(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
             query: dict[str, str] | None = None) -> Any:
        """The decoded JSON answer; KubeError on any non-2xx status or connection failure."""
        if query:
            path += "?" + urlencode(query)
        conn, response = self._send(method, path, body, content_type, self._timeout)
        try:
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise KubeError(0, f"{method} {path}: {exc!r}") from None
        self._release(conn, response)
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
    """JSON-patch `add` sets the caBundle of the first `count` webhooks whether or not one is set yet."""
    encoded = base64.b64encode(ca_pem).decode()
    ops = [{"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": encoded} for i in range(count)]
    api.call("PATCH", f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{name}", ops,
             content_type="application/json-patch+json")
