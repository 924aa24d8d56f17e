"""Where the API server is and how to authenticate: in-cluster config, or a kubeconfig file.

In-cluster: `KUBERNETES_SERVICE_HOST`/`_PORT` and the mounted ServiceAccount directory (`token`,
`ca.crt`). The token is re-read from its file once a minute, as client-go does: projected tokens rotate.

Kubeconfig: one file or, as in `KUBECONFIG`, a list merged as kubectl merges it (the first file to
define a name or the current context wins; missing files are skipped); a context chosen by name or the
current one; a token, token file, client certificate or `exec` credential plugin (ExecCredential).
"""
from __future__ import annotations

import base64
import dataclasses
import datetime
import json
import os
import ssl
import subprocess
from typing import Any, Callable, Mapping, Optional, Sequence, Union

__all__ = ["Credentials", "ConfigError", "in_cluster", "from_kubeconfig", "TokenFile", "paths"]

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
    """Where the API server is and how to prove who we are, however they were found."""

    server: str  # https://host:port (or http:// in tests)
    ssl_context: Optional[ssl.SSLContext]
    token: Optional[Callable[[], str]] = None
    namespace: str = ""  # the context's namespace ("" if it names none)


def _context(*, ca_pem: Optional[str], insecure: bool, cert_pem: Optional[str], key_pem: Optional[str]) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.create_default_context()
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert_pem and key_pem:
        # ssl only loads client certificates from files: write them to a private temp dir briefly.
        # Imported here: tempfile brings shutil, random, bz2 and lzma (~0.6 MiB RSS) that only this path uses.
        import tempfile

        with tempfile.TemporaryDirectory(prefix="elector-") as tmp:
            cert_path, key_path = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
            for path, data in ((cert_path, cert_pem), (key_path, key_pem)):
                with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w", encoding="utf-8") as handle:
                    handle.write(data)
            context.load_cert_chain(cert_path, key_path)
    return context


def in_cluster(env: Mapping[str, str], *, sa_dir: str, now: Callable[[], float]) -> Credentials:
    """The pod's ServiceAccount credentials; the token is re-read, as the kubelet rotates it."""
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


def paths(value: str) -> list[str]:
    """A `KUBECONFIG` value: paths separated by the OS's list separator (":" here)."""
    return [path for path in value.split(os.pathsep) if path]


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


def _merged(files: Sequence[str]) -> dict[str, Any]:
    """kubectl's merge: the first file that defines a name (or current-context) wins. Each entry keeps the
    directory of its file (`_base`) for its relative paths. Missing files are skipped, unless all are."""
    merged: dict[str, Any] = {"clusters": {}, "contexts": {}, "users": {}, "current-context": ""}
    found = [path for path in files if os.path.isfile(path)]
    if not found:
        raise ConfigError(f"--kubeconfig: no such file {os.pathsep.join(files)!r}")
    for path in found:
        config = _load(path)
        base = os.path.dirname(os.path.abspath(path))
        merged["current-context"] = merged["current-context"] or config.get("current-context") or ""
        for section, kind in (("clusters", "cluster"), ("contexts", "context"), ("users", "user")):
            for item in config.get(section) or []:
                if isinstance(item, dict) and item.get("name") not in merged[section]:
                    merged[section][item.get("name")] = dict(item.get(kind) or {}, _base=base)
    return merged


def _named(items: Mapping[str, dict[str, Any]], name: str, kind: str) -> dict[str, Any]:
    if name not in items:
        raise ConfigError(f"--kubeconfig: no {kind} named {name!r}")
    return items[name]


class _ExecCredential:
    """A `users[].user.exec` credential plugin (client.authentication.k8s.io): run it, use its token or
    client certificate, and run it again once `expirationTimestamp` has passed."""

    def __init__(self, spec: Mapping[str, Any], base: str) -> None:
        self.spec = spec
        self.base = base
        self.status: dict[str, Any] = {}
        self._expires: Optional[datetime.datetime] = None

    def fetch(self) -> dict[str, Any]:
        now = datetime.datetime.now(datetime.timezone.utc)
        if self.status and (self._expires is None or now < self._expires):
            return self.status
        command = str(self.spec.get("command") or "")
        if os.sep in command and not os.path.isabs(command):
            command = os.path.join(self.base, command)
        api_version = self.spec.get("apiVersion") or "client.authentication.k8s.io/v1"
        env = {**os.environ, **{e["name"]: e["value"] for e in self.spec.get("env") or []},
               "KUBERNETES_EXEC_INFO": json.dumps({"apiVersion": api_version, "kind": "ExecCredential",
                                                   "spec": {"interactive": False}})}
        try:
            done = subprocess.run([command, *(self.spec.get("args") or [])], env=env, capture_output=True,
                                  text=True, timeout=60, check=True)
            self.status = json.loads(done.stdout).get("status") or {}
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            raise ConfigError(f"--kubeconfig: exec plugin {command!r} failed: {exc}") from exc
        expires = self.status.get("expirationTimestamp")
        self._expires = datetime.datetime.fromisoformat(expires.replace("Z", "+00:00")) if expires else None
        return self.status

    def token(self) -> str:
        return str(self.fetch().get("token") or "")


def _data(section: Mapping[str, Any], key: str, base: str) -> Optional[str]:
    """`<key>-data` (base64) or the file named by `<key>` (relative to the kubeconfig)."""
    if section.get(f"{key}-data"):
        return base64.b64decode(section[f"{key}-data"]).decode()
    if section.get(key):
        with open(os.path.join(base, section[key]), encoding="utf-8") as handle:
            return handle.read()
    return None


def from_kubeconfig(path: Union[str, Sequence[str]], *, now: Callable[[], float],
                    context: Optional[str] = None) -> Credentials:
    """A context (default: the current one) of a kubeconfig, or of several merged as kubectl does: server,
    CA, and a token, token file, client certificate or exec plugin. Raises `ConfigError`."""
    config = _merged([path] if isinstance(path, str) else list(path))
    try:
        chosen = _named(config["contexts"], context or config["current-context"], "context")
        cluster = _named(config["clusters"], chosen["cluster"], "cluster")
        user = _named(config["users"], chosen["user"], "user")
        server = cluster["server"].rstrip("/")
    except KeyError as exc:
        raise ConfigError(f"--kubeconfig: missing {exc}") from None
    plugin = _ExecCredential(user["exec"], user["_base"]) if user.get("exec") else None
    try:
        ssl_context = None
        if server.startswith("https://"):
            issued = plugin.fetch() if plugin else {}
            ssl_context = _context(
                ca_pem=_data(cluster, "certificate-authority", cluster["_base"]),
                insecure=bool(cluster.get("insecure-skip-tls-verify")),
                cert_pem=issued.get("clientCertificateData") or _data(user, "client-certificate", user["_base"]),
                key_pem=issued.get("clientKeyData") or _data(user, "client-key", user["_base"]),
            )
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"--kubeconfig: bad TLS material: {exc}") from exc
    token: Optional[Callable[[], str]] = None
    if user.get("token"):
        static = str(user["token"])
        token = lambda: static  # noqa: E731
    elif user.get("tokenFile"):
        token = TokenFile(os.path.join(user["_base"], user["tokenFile"]), now=now)
    elif plugin is not None and plugin.token():
        token = plugin.token
    return Credentials(server, ssl_context, token, namespace=str(chosen.get("namespace") or ""))
