"""kube-elector's sidecar: Lease leader election served to the app on localhost.

Imports nothing from `webhook`, `certs` or `localplane`; needs only the standard library
(plus pyyaml, lazily, for --kubeconfig files in YAML).
"""
from elector.election.loop import LeaderElector, View
from elector.settings import ElectionConfig, Settings

__all__ = ["LeaderElector", "View", "ElectionConfig", "Settings"]
