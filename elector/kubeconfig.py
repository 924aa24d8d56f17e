"""Where the API server is and how to authenticate: in-cluster config, or a kubeconfig file.

In-cluster: `KUBERNETES_SERVICE_HOST`/`_PORT` and the mounted ServiceAccount directory (`token`,
`ca.crt`). The token is re-read from its file once a minute, as client-go does: projected tokens rotate.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import os
import ssl
import tempfile
from typing import Any, Callable, Mapping, Optional

__all__ = ["Credentials", "ConfigError", "in_cluster", "from_kubeconfig", "TokenFile"]

TOKEN_REREAD_SECONDS = 60.0


class ConfigError(Exception):
    """The API server address or credentials could not be loaded."""


class TokenFile:
    """A bearer token file, re-read at most every `interval` seconds of `now()`."""

    def __init__(self, path: str, *, now: Callable[[], float], interval: float = TOKEN_REREAD_SECONDS) -> None:
        self.path = path
        self._now = now
        self._interval = interval
        self._token = ""
        self._read_at: Optional[float] = None

    def __call__(self) -> str:
        now = self._now()
        if self._read_at is None or now - self._read_at >= self._interval:
            try:
                with open(self.path, encoding="utf-8") as handle:
                    self._token = handle.read().strip()
                self._read_at = now
            except OSError as exc:
                if self._read_at is None:
                    raise ConfigError(f"cannot read token file {self.path}: {exc}") from exc
        return self._token


@dataclasses.dataclass
class Credentials:
    server: str  # https://host:port (or http:// in tests)
    ssl_context: Optional[ssl.SSLContext]
    token: Optional[Callable[[], str]] = None


def _context(*, ca_pem: Optional[str], insecure: bool, cert_pem: Optional[str], key_pem: Optional[str]) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.create_default_context()
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert_pem and key_pem:
        # ssl only loads client certificates from files: write them to a private temp dir briefly.
        with tempfile.TemporaryDirectory(prefix="elector-") as tmp:
            cert_path, key_path = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
            for path, data in ((cert_path, cert_pem), (key_path, key_pem)):
                with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w", encoding="utf-8") as handle:
                    handle.write(data)
            context.load_cert_chain(cert_path, key_path)
    return context


def in_cluster(env: Mapping[str, str], *, sa_dir: str, now: Callable[[], float]) -> Credentials:
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise ConfigError("not in a cluster: KUBERNETES_SERVICE_HOST/PORT unset (use --kubeconfig)")
    try:
        with open(os.path.join(sa_dir, "ca.crt"), encoding="utf-8") as handle:
            ca_pem = handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {sa_dir}/ca.crt: {exc}") from exc
    token = TokenFile(os.path.join(sa_dir, "token"), now=now)
    token()  # fail now, not at the first request
    host = f"[{host}]" if ":" in host else host
    return Credentials(f"https://{host}:{port}", _context(ca_pem=ca_pem, insecure=False, cert_pem=None, key_pem=None), token)


def _load(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    try:
        loaded = json.loads(text)
    except ValueError:
        try:
            import yaml  # only outside a cluster; the image ships pyyaml for this
        except ImportError as exc:
            raise ConfigError("--kubeconfig: YAML needs pyyaml (or give a JSON kubeconfig)") from exc
        loaded = yaml.safe_load(text)
    if not isinstance(loaded, dict):
        raise ConfigError(f"--kubeconfig: {path} is not a kubeconfig")
    return loaded


def _named(items: Any, name: str, kind: str) -> dict[str, Any]:
    for item in items or []:
        if item.get("name") == name:
            return dict(item.get(kind) or {})
    raise ConfigError(f"--kubeconfig: no {kind} named {name!r}")


def _data(section: Mapping[str, Any], key: str, base: str) -> Optional[str]:
    """`<key>-data` (base64) or the file named by `<key>` (relative to the kubeconfig)."""
    if section.get(f"{key}-data"):
        return base64.b64decode(section[f"{key}-data"]).decode()
    if section.get(key):
        with open(os.path.join(base, section[key]), encoding="utf-8") as handle:
            return handle.read()
    return None


def from_kubeconfig(path: str, *, now: Callable[[], float]) -> Credentials:
    """The current context of a kubeconfig: server, CA, and a token, token file or client certificate."""
    config = _load(path)
    base = os.path.dirname(os.path.abspath(path))
    try:
        context = _named(config.get("contexts"), config["current-context"], "context")
        cluster = _named(config.get("clusters"), context["cluster"], "cluster")
        user = _named(config.get("users"), context["user"], "user")
        server = cluster["server"].rstrip("/")
    except KeyError as exc:
        raise ConfigError(f"--kubeconfig: missing {exc}") from None
    try:
        ssl_context = None
        if server.startswith("https://"):
            ssl_context = _context(
                ca_pem=_data(cluster, "certificate-authority", base),
                insecure=bool(cluster.get("insecure-skip-tls-verify")),
                cert_pem=_data(user, "client-certificate", base),
                key_pem=_data(user, "client-key", base),
            )
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"--kubeconfig: bad TLS material: {exc}") from exc
    token: Optional[Callable[[], str]] = None
    if user.get("token"):
        static = str(user["token"])
        token = lambda: static  # noqa: E731
    elif user.get("tokenFile"):
        token = TokenFile(os.path.join(base, user["tokenFile"]), now=now)
    return Credentials(server, ssl_context, token)
