"""Kubeconfig files for the plane's clients: written as JSON (valid YAML, which every client reads), mode 0600."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

__all__ = ["cert_user", "b64", "write_json", "document"]


def cert_user(cert: Path, key: Path) -> dict[str, str]:
    return {"client-certificate-data": b64(cert.read_bytes()), "client-key-data": b64(key.read_bytes())}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write_json(path: Path, content: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(content, indent=2) + "\n")


def document(server: str, ca_pem: bytes, user: dict[str, str], *, tls_server_name: str = "") -> dict[str, Any]:
    """One cluster (server, trusting ca_pem), one user, one context: what every client of the plane gets.
    tls_server_name: the name to verify when server is a relay's address the certificate does not hold."""
    # JSON is valid YAML, so kubectl and every client library read this file.
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "localplane",
                "cluster": {"server": server, "certificate-authority-data": b64(ca_pem),
                            **({"tls-server-name": tls_server_name} if tls_server_name else {})},
            }
        ],
        "users": [{"name": "localplane-user", "user": user}],
        "contexts": [
            {"name": "localplane", "context": {"cluster": "localplane", "user": "localplane-user"}}
        ],
        "current-context": "localplane",
    }
