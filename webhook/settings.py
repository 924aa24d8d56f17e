"""The webhook's settings: one typed place, loaded once at startup.

Precedence (highest first): command-line flags, environment variables (`KUBE_ELECTOR_<FIELD>`, nested
with `__`), the YAML config file (`--config` / `KUBE_ELECTOR_CONFIG`, the ConfigMap in manifests/), then
the defaults below. webhook/settings_sources.py reads the three sources into one dict; here each field
is converted to its type and checked, and a frozen object made.

Standard library only (dataclasses; PyYAML for the file). These settings were pydantic + pydantic-settings
models, whose import alone takes an interpreter from 10 to 33 MiB RSS; issue 24 asks for a webhook pod
as light as a Go injector's. Measured on one machine: `import webhook.settings` 36 -> 15 MiB RSS and
230 -> 78 ms; `import webhook.__main__` 51 -> 41 MiB and 385 -> 285 ms (wall, each process, each worker).
The flag, env and file forms are the ones pydantic-settings read, and so are the checks.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from types import UnionType
from typing import Any, Literal, get_args, get_origin

from elector.election import timings
from webhook import settings_sources as sources
from webhook.settings_sources import SettingsError

__all__ = ["VERSION", "ANNOTATION_PREFIX", "REMOVED", "Limits", "Resources", "ElectionDefaults", "Settings",
           "SettingsError", "load"]

VERSION = "0.2.0"
ANNOTATION_PREFIX = "elector.dev/"

#: Settings of 0.1 that this version no longer has, and what to do about each. They are accepted
#: from every source (config file, env, flags), ignored, and named in a warning at startup
#: (Settings.removed_settings, logged by __main__); see Settings.from_dict for why.
REMOVED = {
    "manage_role_bindings": "remove it: the kube-elector controller manages RBAC now (a Role per election, on its "
                            "own Lease only); since 0.2 the webhook writes nothing, as an admission request is "
                            "unauthenticated",
    "election_cluster_role": "remove it: the kube-elector controller manages RBAC now (a Role per election, on its "
                             "own Lease only); since 0.2 the webhook binds no ClusterRole",
}
#: The REMOVED settings that were boolean switches on the command line (no value after them).
_REMOVED_SWITCHES = {"manage_role_bindings"}


def setting(default: Any, help: str = "", *, ge: float | None = None, gt: float | None = None,  # noqa: A002
            le: float | None = None) -> Any:
    """A field: its default (a list is copied for each object), its flag help, its bounds (`ge`: >=, `gt`: >,
    `le`: <=)."""
    bounds = {name: value for name, value in (("ge", ge), ("gt", gt), ("le", le)) if value is not None}
    metadata = {"help": help, **bounds}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


#: What a string from env or a flag means for a boolean (pydantic's words, any case).
_TRUE, _FALSE = {"1", "on", "t", "true", "y", "yes"}, {"0", "off", "f", "false", "n", "no"}


def _convert(hint: Any, value: Any, bounds: Mapping[str, Any]) -> Any:
    """`value` as type `hint`, strings from env and flags parsed; ValueError says what is allowed."""
    if isinstance(hint, type) and issubclass(hint, _Group):
        if isinstance(value, hint):
            return value
        if isinstance(value, Mapping):
            return hint.from_dict(value)
        names = ", ".join(field.name for field in dataclasses.fields(hint))  # type: ignore[arg-type]
        raise ValueError(f"must be a mapping (of {names}), not {value!r}")
    origin, args = get_origin(hint), get_args(hint)
    if origin is Literal:
        if isinstance(value, str) and value in args:
            return value
        raise ValueError(f"must be one of {', '.join(args)}, not {value!r}")
    if origin is list:
        if not isinstance(value, list):
            raise ValueError(f"must be a list of strings, not {value!r}")
        bad = [(str(i), f"must be a string, not {item!r}") for i, item in enumerate(value) if not isinstance(item, str)]
        if bad:
            raise SettingsError.invalid(bad)
        return list(value)
    if origin is UnionType:  # Path | None
        return None if value is None else _convert(Path, value, bounds)
    if hint is bool:
        if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError(f"must be a boolean (true or false), not {value!r}")
    if hint in (int, float):
        number = _number(hint, value)
        for name, (word, holds) in _BOUNDS.items():
            if name in bounds and not holds(number, bounds[name]):
                raise ValueError(f"must be {word} {bounds[name]}, not {number}")
        return number
    if hint is Path and isinstance(value, (str, os.PathLike)):
        return Path(value)
    if hint is str and isinstance(value, str):
        return value
    raise ValueError(f"must be {'a path' if hint is Path else 'a string'}, not {value!r}")


def _number(hint: type[int] | type[float], value: Any) -> Any:
    """An int or float from a number or its text ("5000", " 5000 ", "5000.0", "1e3"); not from a boolean."""
    number: int | float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        for parse in (int, float):
            try:
                number = parse(value)
                break
            except ValueError:
                pass
    if number is not None and hint is float:
        return float(number)
    if isinstance(number, int) or (isinstance(number, float) and number.is_integer()):
        return int(number)
    raise ValueError(f"must be {'an integer' if hint is int else 'a number'}, not {value!r}")


_BOUNDS: dict[str, tuple[str, Callable[[Any, Any], bool]]] = {
    "ge": (">=", lambda value, bound: value >= bound),
    "gt": (">", lambda value, bound: value > bound),
    "le": ("<=", lambda value, bound: value <= bound),
}


class _Group:
    """A group of settings: converts and checks its fields when made, as `Settings(port="5000")` did
    with pydantic; SettingsError names each bad field (`limits.max_connections: must be >= 10`)."""

    def __post_init__(self) -> None:
        problems: list[tuple[str, str]] = []
        for field, hint in sources.fields_of(type(self)):
            try:
                object.__setattr__(self, field.name, _convert(hint, getattr(self, field.name), field.metadata))
            except SettingsError as exc:  # a nested group, or items of a list
                problems += [(f"{field.name}.{where}" if where else field.name, what) for where, what in exc.problems]
            except ValueError as exc:
                problems.append((field.name, str(exc)))
        if not problems:  # the checks across fields need every field valid
            problems = self._check()
        if problems:
            raise SettingsError.invalid(problems)

    def _check(self) -> list[tuple[str, str]]:
        return []

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Any:
        """An object from `data` (the sources' values, strings or YAML's types); a key that is not a setting
        fails naming itself, with every other problem."""
        names = {field.name for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
        problems = [(str(key), "unknown setting") for key in data if key not in names]
        try:
            made = cls(**{key: value for key, value in data.items() if key in names})
        except SettingsError as exc:
            problems += exc.problems
        if problems:
            raise SettingsError.invalid(problems)
        return made


@dataclasses.dataclass(frozen=True)
class Limits(_Group):
    """The webhook server's bounds, per process (settings `limits.*`; enforced by webhook/handshakes.py up to
    the end of the TLS handshake, then by webhook/guard.py)."""

    max_connections: int = setting(400, "open connections per process (each TLS one costs up to ~150 KiB)", ge=10)
    max_handshakes: int = setting(200, "TLS handshakes under way per process; at the cap a new connection takes "
                                  "the place of the oldest", ge=10)
    handshake_timeout_seconds: float = setting(5.0, "time for a TLS handshake, from accept", gt=0, le=60)
    close_timeout_seconds: float = setting(5.0, "time for the TLS close of a connection being closed, then it is "
                                           "dropped", gt=0, le=60)
    max_head_bytes: int = setting(8 * 1024, "request line + headers", ge=1024, le=64 * 1024)
    head_timeout_seconds: float = setting(5.0, "time to receive a request head and body", gt=0, le=60)
    idle_timeout_seconds: float = setting(30.0, "an idle keep-alive connection is closed after this", gt=0)
    body_budget_bytes: int = setting(48 * 1024 * 1024, "request bodies still arriving, all connections together",
                                     ge=1024 * 1024)
    backlog: int = setting(2048, "listen backlog", ge=16)


@dataclasses.dataclass(frozen=True)
class Resources(_Group):
    """Requests and limits of the injected container (small: it is in every replica)."""

    cpu_request: str = "10m"
    memory_request: str = "32Mi"
    memory_limit: str = "64Mi"


@dataclasses.dataclass(frozen=True)
class ElectionDefaults(_Group):
    """Lease timings used when a pod does not set its own (client-go's defaults)."""

    lease_duration: str = "15s"
    renew_deadline: str = "10s"
    retry_period: str = "2s"

    def _check(self) -> list[tuple[str, str]]:
        seconds: list[float] = []
        problems: list[tuple[str, str]] = []
        for name in ("lease_duration", "renew_deadline", "retry_period"):
            try:
                seconds.append(timings.parse(getattr(self, name)))
            except ValueError as exc:
                problems.append((name, str(exc)))
        if not problems:
            try:
                timings.check_timings(*seconds)
            except timings.TimingError as exc:
                problems.append((exc.name.replace("-", "_"), str(exc)))
        return problems


@dataclasses.dataclass(frozen=True)
class Settings(_Group):
    """Everything the webhook can be told. Field docs are the flag help."""

    # --- what is injected
    image: str = setting("ghcr.io/kube-elector/elector:" + VERSION, "elector sidecar image")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    native_sidecar: bool = setting(True, "inject as an initContainer with restartPolicy Always (Kubernetes >= 1.29)")
    port: int = setting(4040, "default localhost port of the elector API", ge=1024, le=65535)
    probe_port: int = setting(4041, "default port of /healthz /readyz /metrics", ge=1024, le=65535)
    run_as_user: int = setting(65532, "uid of the elector container (never 0)", ge=1)
    resources: Resources = Resources()
    election: ElectionDefaults = ElectionDefaults()
    token_expiration_seconds: int = setting(3607, ge=600)

    # --- which pods
    excluded_namespaces: list[str] = setting(["kube-system", "kube-public", "kube-node-lease"])
    allow_host_network: bool = setting(False, "inject hostNetwork pods too (the elector then listens on 127.0.0.1 "
                                       "only); refused by default: their ports are the node's")

    # --- serving
    host: str = "0.0.0.0"
    listen_port: int = setting(10250, "HTTPS port of the webhook", ge=1, le=65535)
    tls_cert_file: Path = Path("/etc/kube-elector/tls/tls.crt")
    tls_key_file: Path = Path("/etc/kube-elector/tls/tls.key")
    cert_mode: Literal["files", "self-managed"] = setting(
        "files", "files: read tls_cert_file/tls_key_file (certs CLI or cert-manager); "
        "self-managed: make and rotate a CA + cert, keep them in a Secret, patch the caBundle")
    cert_reload_seconds: float = setting(30.0, "how often certificates are re-read", gt=0)
    shutdown_drain_seconds: float = setting(3.0, "after SIGTERM, keep serving this long, closing each connection "
                                            "after its response", ge=0)
    workers: int = setting(0, "server processes; 0: one per CPU the pod may use (its CPU limit rounded up, else "
                           "its CPU affinity), at most 4", ge=0, le=64)
    namespace: str = setting("kube-elector", "the webhook's own namespace")
    service_name: str = "kube-elector-webhook"
    cert_secret_name: str = "kube-elector-webhook-tls"
    cert_extra_dns: list[str] = setting([], "extra DNS names for the self-managed certificate")
    cert_extra_ips: list[str] = setting([], "extra IP SANs, e.g. 127.0.0.1 for a webhook reached by URL")
    webhook_configuration_name: str = "kube-elector"
    kubeconfig: Path | None = setting(None, "kubeconfig outside a cluster (else in-cluster config)")
    request_timeout_seconds: float = setting(10.0, "time to receive one request body", gt=0, le=30)
    max_body_bytes: int = setting(3 * 1024 * 1024, "larger AdmissionReviews are refused", ge=1024)
    limits: Limits = Limits()  # connections, heads, deadlines: webhook/guard.py
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    def _check(self) -> list[tuple[str, str]]:
        if self.port == self.probe_port:
            return [("probe_port", f"must differ from port (both {self.port})")]
        return []

    @property
    def removed_settings(self) -> dict[str, Any]:
        """The REMOVED settings that were given, with their values (ignored; logged at startup)."""
        return dict(self.__dict__.get("_removed", {}))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Settings:
        """Accept the REMOVED keys with a warning, instead of failing like any other unknown key.

        Why not an error (an unknown key fails for everything else, so a typo still fails):
        - No value of these keys can make the webhook do what its operator did not expect. `true`
          asked for rights for the injected pods' ServiceAccounts: the kube-elector controller gives
          them now (a Role per election, on its Lease only). `false` asked the webhook to write no
          RBAC: it writes none at all now. Ignoring either keeps what it meant for the webhook.
        - Failing would make the upgrade the outage. The webhook's failurePolicy is Fail, and a
          config kept from 0.1 (a kustomize overlay or Helm values that patch the ConfigMap, a
          GitOps repository, scripts passing --no-manage-role-bindings) would crash-loop the new
          replicas halfway through a rollout; issue 20 asks for an upgrade with no failed pod creation.
        - It is not silent: __main__ logs one warning per key at startup (event `setting_removed`)
          that names the key and the fix (REMOVED: remove it, the controller manages RBAC now).
        """
        removed = {key: data[key] for key in REMOVED if key in data}
        made: Settings = super().from_dict({key: value for key, value in data.items() if key not in REMOVED})
        object.__setattr__(made, "_removed", removed)
        return made


def load(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Flags > env > config file > defaults. Raises SettingsError with a readable message; a flag that is
    not one exits 2 naming it (argparse), and so does --help (0)."""
    argv = list(argv or [])
    environ = os.environ if environ is None else environ
    removed_flags = sources.take_flags(argv, REMOVED, _REMOVED_SWITCHES)  # the parser does not know them
    flags, config = sources.parse_flags(Settings, argv, prog="kube-elector-webhook")
    if config is not None:
        file = sources.read_file(config, "--config")
    else:
        config = sources.env_value(environ, "CONFIG")
        file = sources.read_file(config, "KUBE_ELECTOR_CONFIG") if config else {}
    env = sources.from_env(Settings, environ)
    env.update({key: value for key in REMOVED if (value := sources.env_value(environ, key)) is not None})
    return Settings.from_dict(sources.merge(file, env, {**flags, **removed_flags}))
