"""The controller's settings: one typed place, read once from flags and the downward-API env."""
from __future__ import annotations

import argparse
import dataclasses
import socket
from pathlib import Path
from typing import Mapping, Optional, Sequence

from elector import settings as electorsettings

__all__ = ["Settings", "parse"]


@dataclasses.dataclass(frozen=True)
class Settings:
    """Parsed once at start (`parse`), so a bad flag stops the controller before it touches the cluster."""

    election: electorsettings.ElectionConfig  # the controller's own: one active replica
    kubeconfig: Optional[Path]
    health_host: str
    health_port: int
    log_format: str
    log_level: str


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise electorsettings.SettingsError(message)


# The controller's own flags for the fields of its ElectionConfig (elector.settings.election_config).
_ELECTION_FLAGS = {"name": ("--lease", ""), "namespace": ("--namespace", ""), "identity": ("--identity", " (set POD_NAME)")}


def parse(argv: Sequence[str], env: Mapping[str, str]) -> Settings:
    """Raises elector.settings.SettingsError, naming the flag, on bad input."""
    parser = _Parser(prog="kube-elector-controller", allow_abbrev=False,
                     description="Holds the rights of kube-elector's elections: Leases, their RBAC, successors, "
                                 "leader labels, leader Services, Events.")
    parser.add_argument("--kubeconfig", default=env.get("KUBECONFIG") or None,
                        help="kubeconfig file (default: in-cluster config)")
    parser.add_argument("--namespace", default=env.get("POD_NAMESPACE", ""),
                        help="namespace of the controller's own Lease (default: $POD_NAMESPACE)")
    parser.add_argument("--lease", default="kube-elector-controller", help="the controller's own Lease")
    parser.add_argument("--identity", default=env.get("POD_NAME") or socket.gethostname(),
                        help="this replica's identity (default: $POD_NAME)")
    parser.add_argument("--health-address", default="0.0.0.0:8081", help="address of /healthz, /readyz, /metrics")
    parser.add_argument("--log-format", default="json", choices=["json", "text"])
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(list(argv))
    host, sep, port = args.health_address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise electorsettings.SettingsError(f"--health-address: {args.health_address!r} is not host:port")
    kubeconfig = Path(args.kubeconfig) if args.kubeconfig else None
    if kubeconfig is not None and not kubeconfig.is_file():
        raise electorsettings.SettingsError(f"--kubeconfig: no such file {str(kubeconfig)!r}")
    uid = env.get("POD_UID", "") if args.identity == env.get("POD_NAME") else ""
    election = electorsettings.election_config(_ELECTION_FLAGS, name=args.lease, namespace=args.namespace,
                                               identity=args.identity, uid=uid)
    return Settings(election=election, kubeconfig=kubeconfig, health_host=host or "0.0.0.0",
                    health_port=int(port), log_format=args.log_format, log_level=args.log_level)
