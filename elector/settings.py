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
from typing import Any, Callable, Mapping, Optional, Sequence

from elector.election import config as configs
from elector.election import timings
from elector.election.config import ElectionConfig
from elector.kube import kubeconfig as kubeconfigs

__all__ = ["ElectionConfig", "Settings", "SettingsError", "election_config", "parse"]

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

class SettingsError(ValueError):
    """A setting is missing or invalid; the message starts with the flag's name."""


# ElectionConfig's fields -> (flag, hint); a timing's flag is its RANGES key.
ELECTION_FLAGS = {"name": ("--election", ""), "namespace": ("--election-namespace", " (or set POD_NAMESPACE)"),
                  "identity": ("--identity", " (set POD_NAME)")}


def election_config(flags: Mapping[str, tuple[str, str]] = ELECTION_FLAGS, **fields: Any) -> ElectionConfig:
    """An `ElectionConfig`, its `ConfigError` turned into a `SettingsError` naming the CLI's flag."""
    try:
        return ElectionConfig(**fields)
    except configs.ConfigError as exc:
        flag, hint = flags.get(exc.field, (f"--{exc.field}", ""))
        raise SettingsError(f"{flag}: {exc.problem}{hint}") from None


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every setting of the sidecar after parsing: what `app` builds from."""

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
        ("retry-period", "2s", "time between acquire attempts, and between retries of a failed renewal"),
        ("renew-interval", "0", "time between a leader's renewals (0: two fifths of the lease duration)"),
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
    _refuse_moved(argv)
    value = _values(argv, env)
    sa_dir = env.get("ELECTOR_SERVICE_ACCOUNT_DIR", SERVICE_ACCOUNT_DIR)
    namespace = value("election-namespace") or env.get("POD_NAMESPACE", "") or _read(f"{sa_dir}/namespace")
    identity = value("identity") or env.get("POD_NAME", "") or socket.gethostname()
    log_format, level = _logging(value)
    http_host, http_port = _address("http", value("http"))
    probe_host, probe_port = _address("probe-address", value("probe-address"))
    metrics_host: Optional[str] = None
    metrics_port: Optional[int] = None
    if value("metrics-address"):
        metrics_host, metrics_port = _address("metrics-address", value("metrics-address"))
    app_health_url = value("app-health-url") or None
    if app_health_url and not app_health_url.startswith("http://"):
        raise SettingsError(f"--app-health-url: {app_health_url!r} must be an http:// URL")
    election = election_config(
        name=value("election"),
        namespace=namespace,
        identity=identity,
        lease_duration=_duration("lease-duration", value("lease-duration")),
        renew_deadline=_duration("renew-deadline", value("renew-deadline")),
        retry_period=_duration("retry-period", value("retry-period")),
        renew_interval=_duration("renew-interval", value("renew-interval")),
        uid=env.get("POD_UID", "") if identity == env.get("POD_NAME", "") else "",
    )
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
        kubeconfig=_kubeconfig(value, env),
        service_account_dir=sa_dir,
        release_timeout=_release_timeout(value("release-timeout")),
        app_health_url=app_health_url,
        pod_name=env.get("POD_NAME", "") or identity,
        pod_namespace=env.get("POD_NAMESPACE", "") or namespace,
    )


def _refuse_moved(argv: Sequence[str]) -> None:
    """A flag whose job moved to the controller is refused with where it went, not silently ignored."""
    for arg in argv:
        flag = arg.split("=", 1)[0].lstrip("-")
        if arg.startswith("--") and flag in _MOVED:
            raise SettingsError(f"--{flag}: the kube-elector controller does this now (pod annotation "
                                f"elector.dev/{_MOVED[flag]}); remove the flag")


def _values(argv: Sequence[str], env: Mapping[str, str]) -> Callable[[str], str]:
    """A flag's text: the flag, else its `ELECTOR_*` env var, else the default (flags win over env)."""
    parser = _Parser(prog="kube-elector", description="Lease leader election sidecar.", allow_abbrev=False)
    for flag, default, help_text in _flag_table():
        parser.add_argument(f"--{flag}", default=None, help=f"{help_text} [env {_env_name(flag)}]")
    args = vars(parser.parse_args(list(argv)))
    defaults = {f: d for f, d, _ in _flag_table()}

    def value(flag: str) -> str:
        given = args[flag.replace("-", "_")]
        if given is not None:
            return str(given)
        return env.get(_env_name(flag), defaults[flag])
    return value


def _logging(value: Callable[[str], str]) -> tuple[str, str]:
    """The log format and level, checked."""
    log_format = value("log-format").lower()
    if log_format not in ("text", "json"):
        raise SettingsError(f"--log-format: {log_format!r} is neither text nor json")
    level = _LOG_LEVELS.get(value("log-level").lower())
    if level is None:
        raise SettingsError(f"--log-level: unknown level {value('log-level')!r}")
    return log_format, level


def _kubeconfig(value: Callable[[str], str], env: Mapping[str, str]) -> tuple[str, ...]:
    """As kubectl: the flag names one file; else KUBECONFIG, a list whose missing files are skipped;
    else () (in-cluster)."""
    if value("kubeconfig"):
        if not os.path.isfile(value("kubeconfig")):
            raise SettingsError(f"--kubeconfig: no such file {value('kubeconfig')!r}")
        return (value("kubeconfig"),)
    if env.get("KUBECONFIG"):
        kubeconfig = tuple(kubeconfigs.paths(env["KUBECONFIG"]))
        if not any(os.path.isfile(path) for path in kubeconfig):
            raise SettingsError(f"--kubeconfig: no file of KUBECONFIG={env['KUBECONFIG']!r} exists")
        return kubeconfig
    return ()


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
