"""`kube-elector-status` / `kubectl elector status`: every election at a glance, read-only, with the
user's kubeconfig. Not part of the sidecar (its image holds only `elector`): it reuses the sidecar's
kubeconfig loader and HTTP client, and may use pyyaml for `-o yaml`.

reads.py fetches (the only I/O), summary.py turns what was read into rows (pure), output.py prints
them (pure), cli.py is the command line and the --watch loop.
"""
from kubectl_elector.cli import main

__all__ = ["main"]
