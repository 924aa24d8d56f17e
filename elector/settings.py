"""Every setting of the sidecar, in one typed place: flags, `ELECTOR_*` env, downward-API env.

Flags win over env. Invalid input raises `SettingsError` naming the flag; `__main__` turns it into a
one-line message and exit code 1. Flag names follow the NAIS elector (`--election`,
`--election-namespace`, `--http`, `--probe-address`, `--metrics-address`, `--log-format`,
`--log-level`) plus client-go's timings.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import socket
from typing import Mapping, Optional, Sequence

from elector.kube import kubeconfig as kubeconfigs
from elector.election import record
from elector.election import timings

__all__ = ["ElectionConfig", "Settings", "SettingsError", "parse"]

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

class SettingsError(ValueError):
    """A setting is missing or invalid; the message starts with the flag's name."""


@dataclasses.dataclass(frozen=True)
class ElectionConfig:
    """What the election needs; validated like client-go's NewLeaderElector at construction."""

    name: str
    namespace: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    uid: str = ""  # our Pod's uid, written beside the holder: "" where the identity is not a pod name

    def holds(self, rec: "record.LeaderElectionRecord") -> bool:
        """`rec` names us: our identity and, when both sides know it, our Pod's uid (a force-deleted pod
        and its replacement share a name, never a uid)."""
        return (rec.holder_identity == self.identity
                and (not self.uid or not rec.holder_uid or rec.holder_uid == self.uid))

    def __post_init__(self) -> None:
        if not self.name:
            raise SettingsError("--election: required (the Lease name)")
        if not self.namespace:
            raise SettingsError("--election-namespace: required (or set POD_NAMESPACE)")
        if not self.identity:
            raise SettingsError("--identity: empty (set POD_NAME)")
        try:
            timings.check_timings(self.lease_duration, self.renew_deadline, self.retry_period)
        except timings.TimingError as exc:
            raise SettingsError(f"--{exc.name}: {exc}") from None

    @property
    def request_timeout(self) -> float:
        """Per-request timeout: client-go's max(1s, RenewDeadline/2), so one hung call cannot cost the lease."""
        return max(1.0, self.renew_deadline / 2)

    def describe(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclasses.dataclass(frozen=True)
class Settings:
    election: ElectionConfig
    http_host: str = "localhost"
    http_port: int = 4040
    probe_host: str = "0.0.0.0"
    probe_port: int = 4041
    metrics_host: Optional[str] = None  # None: /metrics on the probe address
    metrics_port: Optional[int] = None
    log_format: str = "text"
    log_level: str = "info"
    kubeconfig: tuple[str, ...] = ()  # () = in-cluster config; several = merged as kubectl does
    service_account_dir: str = SERVICE_ACCOUNT_DIR
    release_timeout: float = 0.0
    app_health_url: Optional[str] = None
    pod_name: str = ""
    pod_namespace: str = ""


_LOG_LEVELS = {
    "trace": "debug", "debug": "debug", "info": "info", "warn": "warning", "warning": "warning",
    "error": "error", "fatal": "error", "panic": "error",
}


def _flag_table() -> list[tuple[str, str, str]]:
    """(flag, default-as-text or "", help) in the order shown by --help."""
    return [
        ("election", "", "the election name: the Lease name"),
        ("election-namespace", "", "namespace of the Lease (default: $POD_NAMESPACE)"),
        ("identity", "", "this candidate's identity (default: $POD_NAME, else the hostname)"),
        ("http", "localhost:4040", "address of the election API (/, /sse, /release); keep it on localhost"),
        ("probe-address", "0.0.0.0:4041", "address of /healthz, /readyz (and /metrics by default)"),
        ("metrics-address", "", "address of /metrics (default: on --probe-address)"),
        ("log-format", "text", "text or json"),
        ("log-level", "info", "debug, info, warning or error"),
        ("kubeconfig", "", "kubeconfig file, for running outside a cluster (default: $KUBECONFIG, "
                           "else in-cluster config)"),
        ("lease-duration", "15s", "how long a Lease stays valid without renewal"),
        ("renew-deadline", "10s", "the leader steps down if it cannot renew within this"),
        ("retry-period", "2s", "time between renewals and between acquire attempts"),
        ("release-timeout", "0", "on SIGTERM, wait this long for the app's POST /release (0: don't wait)"),
        ("app-health-url", "", "lead only while GET of this URL answers 2xx (off by default)"),
    ]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise SettingsError(message)


# Flags of 0.1 whose work moved to the controller (docs/security.md): refused with the way out.
_MOVED = {"leader-label": "leader-label", "leader-service": "leader-service", "rollout-aware": "rollout-aware"}


def _env_name(flag: str) -> str:
    return "ELECTOR_" + flag.upper().replace("-", "_")


def _address(flag: str, text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise SettingsError(f"--{flag}: {text!r} is not host:port")
    return (host.strip("[]") or "0.0.0.0"), int(port)


def _duration(flag: str, text: str) -> float:
    try:
        return timings.parse(text)
    except ValueError as exc:
        raise SettingsError(f"--{flag}: {exc}") from None


def parse(argv: Sequence[str], env: Mapping[str, str]) -> Settings:
    """Build `Settings` from command-line arguments and the environment; raises `SettingsError`."""
    for arg in argv:
        flag = arg.split("=", 1)[0].lstrip("-")
        if arg.startswith("--") and flag in _MOVED:
            raise SettingsError(f"--{flag}: the kube-elector controller does this now (pod annotation "
                                f"elector.dev/{_MOVED[flag]}); remove the flag")
    parser = _Parser(prog="kube-elector", description="Lease leader election sidecar.", allow_abbrev=False)
    for flag, default, help_text in _flag_table():
        parser.add_argument(f"--{flag}", default=None, help=f"{help_text} [env {_env_name(flag)}]")
    args = vars(parser.parse_args(list(argv)))

    def value(flag: str) -> str:
        given = args[flag.replace("-", "_")]
        if given is not None:
            return str(given)
        default = dict((f, d) for f, d, _ in _flag_table())[flag]
        return env.get(_env_name(flag), default)

    sa_dir = env.get("ELECTOR_SERVICE_ACCOUNT_DIR", SERVICE_ACCOUNT_DIR)
    namespace = value("election-namespace") or env.get("POD_NAMESPACE", "") or _read(f"{sa_dir}/namespace")
    identity = value("identity") or env.get("POD_NAME", "") or socket.gethostname()
    log_format = value("log-format").lower()
    if log_format not in ("text", "json"):
        raise SettingsError(f"--log-format: {log_format!r} is neither text nor json")
    level = _LOG_LEVELS.get(value("log-level").lower())
    if level is None:
        raise SettingsError(f"--log-level: unknown level {value('log-level')!r}")
    http_host, http_port = _address("http", value("http"))
    probe_host, probe_port = _address("probe-address", value("probe-address"))
    metrics_host: Optional[str] = None
    metrics_port: Optional[int] = None
    if value("metrics-address"):
        metrics_host, metrics_port = _address("metrics-address", value("metrics-address"))
    app_health_url = value("app-health-url") or None
    if app_health_url and not app_health_url.startswith("http://"):
        raise SettingsError(f"--app-health-url: {app_health_url!r} must be an http:// URL")
    election = ElectionConfig(
        name=value("election"),
        namespace=namespace,
        identity=identity,
        lease_duration=_duration("lease-duration", value("lease-duration")),
        renew_deadline=_duration("renew-deadline", value("renew-deadline")),
        retry_period=_duration("retry-period", value("retry-period")),
        uid=env.get("POD_UID", "") if identity == env.get("POD_NAME", "") else "",
    )
    # As kubectl: the flag names one file; else KUBECONFIG, a list whose missing files are skipped.
    kubeconfig: tuple[str, ...] = ()
    if value("kubeconfig"):
        kubeconfig = (value("kubeconfig"),)
        if not os.path.isfile(kubeconfig[0]):
            raise SettingsError(f"--kubeconfig: no such file {kubeconfig[0]!r}")
    elif env.get("KUBECONFIG"):
        kubeconfig = tuple(kubeconfigs.paths(env["KUBECONFIG"]))
        if not any(os.path.isfile(path) for path in kubeconfig):
            raise SettingsError(f"--kubeconfig: no file of KUBECONFIG={env['KUBECONFIG']!r} exists")
    return Settings(
        election=election,
        http_host=http_host,
        http_port=http_port,
        probe_host=probe_host,
        probe_port=probe_port,
        metrics_host=metrics_host,
        metrics_port=metrics_port,
        log_format=log_format,
        log_level=level,
        kubeconfig=kubeconfig,
        service_account_dir=sa_dir,
        release_timeout=_release_timeout(value("release-timeout")),
        app_health_url=app_health_url,
        pod_name=env.get("POD_NAME", "") or identity,
        pod_namespace=env.get("POD_NAMESPACE", "") or namespace,
    )


def _release_timeout(text: str) -> float:
    try:
        return timings.check("release-timeout", _duration("release-timeout", text))
    except ValueError as exc:
        raise SettingsError(f"--release-timeout: {exc}") from None


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return ""
