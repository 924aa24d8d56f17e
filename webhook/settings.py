"""The webhook's settings: one typed place, loaded once at startup.

Precedence (highest first): command-line flags, environment variables
(`KUBE_ELECTOR_<FIELD>`), the YAML config file (`--config` / `KUBE_ELECTOR_CONFIG`,
the ConfigMap in manifests/), then the defaults below.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    CliSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from elector.election import timings

VERSION = "0.2.0"
ANNOTATION_PREFIX = "elector.dev/"

#: Settings of 0.1 that this version no longer has, and what to do about each. They are accepted
#: from every source (config file, env, flags), ignored, and named in a warning at startup
#: (Settings.removed_settings, logged by __main__); see Settings._accept_removed for why.
REMOVED = {
    "manage_role_bindings": "remove it: the kube-elector controller manages RBAC now (a Role per election, on its "
                            "own Lease only); since 0.2 the webhook writes nothing, as an admission request is "
                            "unauthenticated",
    "election_cluster_role": "remove it: the kube-elector controller manages RBAC now (a Role per election, on its "
                             "own Lease only); since 0.2 the webhook binds no ClusterRole",
}


class Limits(BaseModel):
    """The webhook server's bounds, per process (settings `limits.*`; enforced by webhook/handshakes.py up to
    the end of the TLS handshake, then by webhook/guard.py)."""

    max_connections: int = Field(400, ge=10, description="open connections per process (each TLS one costs up to ~150 KiB)")
    max_handshakes: int = Field(200, ge=10, description="TLS handshakes under way per process; at the cap a new "
                                "connection takes the place of the oldest")
    handshake_timeout_seconds: float = Field(5.0, gt=0, le=60, description="time for a TLS handshake, from accept")
    close_timeout_seconds: float = Field(5.0, gt=0, le=60, description="time for the TLS close of a connection "
                                         "being closed, then it is dropped")
    max_head_bytes: int = Field(8 * 1024, ge=1024, le=64 * 1024, description="request line + headers")
    head_timeout_seconds: float = Field(5.0, gt=0, le=60, description="time to receive a request head and body")
    idle_timeout_seconds: float = Field(30.0, gt=0, description="an idle keep-alive connection is closed after this")
    body_budget_bytes: int = Field(48 * 1024 * 1024, ge=1024 * 1024,
                                   description="request bodies still arriving, all connections together")
    backlog: int = Field(2048, ge=16, description="listen backlog")


class Resources(BaseModel):
    """Requests and limits of the injected container (small: it is in every replica)."""

    cpu_request: str = "10m"
    memory_request: str = "32Mi"
    memory_limit: str = "64Mi"


class ElectionDefaults(BaseModel):
    """Lease timings used when a pod does not set its own (client-go's defaults)."""

    lease_duration: str = "15s"
    renew_deadline: str = "10s"
    retry_period: str = "2s"

    @model_validator(mode="after")
    def _check(self) -> "ElectionDefaults":
        timings.check_timings(
            timings.parse(self.lease_duration),
            timings.parse(self.renew_deadline),
            timings.parse(self.retry_period),
        )
        return self


class Settings(BaseSettings):
    """Everything the webhook can be told. Field docs are the flag help."""

    model_config = SettingsConfigDict(
        env_prefix="KUBE_ELECTOR_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    # --- what is injected
    image: str = Field("ghcr.io/kube-elector/elector:" + VERSION, description="elector sidecar image")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    native_sidecar: bool = Field(
        True, description="inject as an initContainer with restartPolicy Always (Kubernetes >= 1.29)"
    )
    port: int = Field(4040, ge=1024, le=65535, description="default localhost port of the elector API")
    probe_port: int = Field(4041, ge=1024, le=65535, description="default port of /healthz /readyz /metrics")
    run_as_user: int = Field(65532, ge=1, description="uid of the elector container (never 0)")
    resources: Resources = Resources()
    election: ElectionDefaults = ElectionDefaults()
    token_expiration_seconds: int = Field(3607, ge=600)

    # --- which pods
    excluded_namespaces: list[str] = ["kube-system", "kube-public", "kube-node-lease"]
    allow_host_network: bool = Field(
        False, description="inject hostNetwork pods too (the elector then listens on 127.0.0.1 only); "
        "refused by default: their ports are the node's",
    )

    # --- serving
    host: str = "0.0.0.0"
    listen_port: int = Field(10250, ge=1, le=65535, description="HTTPS port of the webhook")
    tls_cert_file: Path = Path("/etc/kube-elector/tls/tls.crt")
    tls_key_file: Path = Path("/etc/kube-elector/tls/tls.key")
    cert_mode: Literal["files", "self-managed"] = Field(
        "files",
        description="files: read tls_cert_file/tls_key_file (certs CLI or cert-manager); "
        "self-managed: make and rotate a CA + cert, keep them in a Secret, patch the caBundle",
    )
    cert_reload_seconds: float = Field(30.0, gt=0, description="how often certificates are re-read")
    shutdown_drain_seconds: float = Field(
        3.0, ge=0, description="after SIGTERM, keep serving this long, closing each connection after its response"
    )
    workers: int = Field(0, ge=0, le=64, description="server processes; 0: one per CPU the pod may use "
                         "(its CPU limit rounded up, else its CPU affinity), at most 4")
    namespace: str = Field("kube-elector", description="the webhook's own namespace")
    service_name: str = "kube-elector-webhook"
    cert_secret_name: str = "kube-elector-webhook-tls"
    cert_extra_dns: list[str] = Field([], description="extra DNS names for the self-managed certificate")
    cert_extra_ips: list[str] = Field([], description="extra IP SANs, e.g. 127.0.0.1 for a webhook reached by URL")
    webhook_configuration_name: str = "kube-elector"
    kubeconfig: Path | None = Field(None, description="kubeconfig outside a cluster (else in-cluster config)")
    request_timeout_seconds: float = Field(10.0, gt=0, le=30, description="time to receive one request body")
    max_body_bytes: int = Field(3 * 1024 * 1024, ge=1024, description="larger AdmissionReviews are refused")
    limits: Limits = Limits()  # connections, heads, deadlines: webhook/guard.py
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    _removed: dict[str, Any] = PrivateAttr(default_factory=dict)

    @property
    def removed_settings(self) -> dict[str, Any]:
        """The REMOVED settings that were given, with their values (ignored; logged at startup)."""
        return dict(self._removed)

    @model_validator(mode="wrap")
    @classmethod
    def _accept_removed(cls, data: Any, handler: ModelWrapValidatorHandler["Settings"]) -> "Settings":
        """Accept the REMOVED keys with a warning, instead of failing like any other unknown key.

        Why not an error (extra="forbid" stays for everything else, so a typo still fails):
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
        removed: dict[str, Any] = {}
        if isinstance(data, dict):
            removed = {key: data[key] for key in REMOVED if key in data}
            data = {key: value for key, value in data.items() if key not in REMOVED}
        settings = handler(data)
        settings._removed = removed
        return settings

    @field_validator("run_as_user")
    @classmethod
    def _non_root(cls, value: int) -> int:
        if value == 0:
            raise ValueError("the elector never runs as root; pick a uid > 0")
        return value

    @model_validator(mode="after")
    def _ports_differ(self) -> "Settings":
        if self.port == self.probe_port:
            raise ValueError("port and probe_port must differ")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _config_file.get() or os.environ.get("KUBE_ELECTOR_CONFIG")
        if config_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)


#: The --config file of the load() in progress (the sources are built inside pydantic-settings).
_config_file: ContextVar[str | None] = ContextVar("config_file", default=None)


class SettingsError(Exception):
    """The settings are invalid; the message names each field and what is wrong."""


def load(argv: list[str] | None = None) -> Settings:
    """Flags > env > config file > defaults. Raises SettingsError with a readable message."""
    argv = list(argv or [])
    config_file = None
    if "--config" in argv:  # the config file must be known before the sources are built
        i = argv.index("--config")
        config_file = argv[i + 1] if i + 1 < len(argv) else ""
        del argv[i : i + 2]
        if not config_file:
            raise SettingsError("--config: give the path of a YAML settings file")
    removed = {**_removed_env(), **_take_removed_flags(argv)}  # these two sources do not see them
    token = _config_file.set(config_file)
    try:
        cli: CliSettingsSource[Any] = CliSettingsSource(
            Settings, cli_parse_args=argv, cli_prog_name="kube-elector-webhook", cli_kebab_case=True,
            cli_implicit_flags=True,
        )
        return Settings(_cli_settings_source=cli(args=argv), **removed)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise SettingsError(describe(exc)) from None
    except (OSError, ValueError) as exc:
        raise SettingsError(str(exc)) from None
    except yaml.YAMLError as exc:  # a --config file that is not YAML
        raise SettingsError(f"--config {config_file}: not YAML: {exc}") from None
    finally:
        _config_file.reset(token)


def _take_removed_flags(argv: list[str]) -> dict[str, Any]:
    """Removes the flags of REMOVED settings from `argv` (the CLI source no longer knows them)."""
    found: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        name, has_value, value = argv[i].partition("=")
        key = name[2:].replace("-", "_") if name.startswith("--") else ""
        if key.startswith("no_") and key[3:] in _REMOVED_SWITCHES and not has_value:  # --no-manage-role-bindings
            found[key[3:]] = False
            del argv[i]
        elif key in REMOVED and has_value:
            found[key] = value
            del argv[i]
        elif key in _REMOVED_SWITCHES:  # --manage-role-bindings alone, as cli_implicit_flags made it
            found[key] = True
            del argv[i]
        elif key in REMOVED:
            found[key] = argv[i + 1] if i + 1 < len(argv) else ""
            del argv[i : i + 2]
        else:
            i += 1
    return found


#: The REMOVED settings that were boolean switches on the command line (no value after them).
_REMOVED_SWITCHES = {"manage_role_bindings"}


def _removed_env() -> dict[str, Any]:
    """REMOVED settings given as KUBE_ELECTOR_<KEY> (the env source ignores unknown variables)."""
    wanted = {("KUBE_ELECTOR_" + key).upper(): key for key in REMOVED}
    return {wanted[name.upper()]: value for name, value in os.environ.items() if name.upper() in wanted}


def describe(exc: ValidationError) -> str:
    """One line per bad field: `field: problem`."""
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "settings"
        lines.append(f"{where}: {err['msg']}")
    return "invalid settings: " + "; ".join(lines)
