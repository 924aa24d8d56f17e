"""The controller's calls to the API server: webhook/kube.py's plain-dict calls (no typed models are
built) plus what a controller needs besides; watch lines are decoded as they come.
"""
from __future__ import annotations

import json
from typing import Any, Iterator, Optional
from urllib.parse import quote, urlencode

from webhook import kube as webhook_kube
from webhook.kube import KubeError, connect

__all__ = ["Api", "KubeError", "connect", "path"]


def path(group_version: str, resource: str, namespace: str = "", name: str = "") -> str:
    """`/api/v1/namespaces/ns/pods/name` or `/apis/<group>/<version>/...`; names are quoted."""
    base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    if namespace:
        base += f"/namespaces/{quote(namespace)}"
    base += f"/{resource}"
    return base + (f"/{quote(name)}" if name else "")


class Api(webhook_kube.Api):
    """The webhook's calls (webhook/kube.py), plus reads that may find nothing, deletes, merge patches and watches."""

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
        conn, response = self._send("GET", url, None, "application/json", seconds + 30)
        try:
            if not 200 <= response.status < 300:
                raise KubeError(response.status, f"watch {url}: {response.status}")
            while line := response.readline():  # one event a line; http.client undoes the chunking
                if line.strip():
                    yield json.loads(line)
        except KubeError:
            raise
        except Exception as exc:  # the connection broke or the read timed out
            raise KubeError(0, f"watch {url}: {exc!r}") from None
        finally:
            conn.close()  # a watch's connection is not reused
