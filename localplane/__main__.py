"""`python -m localplane` (what `make cluster` runs): a local cluster in the foreground.

The control plane, a scheduler and a real node (kubelet + containerd) with the local
images; `--no-node` for the control plane alone. Each run starts from an empty workdir,
so a cluster never inherits state (or a dead port) from the previous one. Ctrl-C or
SIGTERM stops it and removes everything the node made.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from localplane import cluster
from localplane.controlplane import plane
from localplane.node import images, isolation, machine, network, node
from localplane.process import binaries, component

_MARKER = ".localplane-workdir"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localplane", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir",
        type=Path,
        default=binaries.ROOT / ".cluster",
        help="PKI, kubeconfig, etcd data, logs (wiped at start)",
    )
    parser.add_argument("--no-node", action="store_true", help="the control plane only: pods stay Pending")
    parser.add_argument("--nodes", type=int, default=1, metavar="N",
                        help="N real nodes (default 1): node 0 is the host, the others have namespaces of their own")
    parser.add_argument("--install", action="store_true",
                        help="also install kube-elector from manifests/ (localplane/overlays/kube-elector)")
    args = parser.parse_args(argv)
    workdir = args.workdir.resolve()
    try:
        _reset(workdir)
        bins = binaries.ensure()
    except (binaries.BinariesMissing, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    # SIGTERM becomes SystemExit and SIGINT KeyboardInterrupt (even if the caller ignored it),
    # so the `with` below stops the components in order.
    component.exit_on_signals()
    try:
        with cluster.Cluster.start(workdir, bins=bins, with_node=not args.no_node, nodes=args.nodes) as running:
            if args.install and not args.no_node:
                running.install_kube_elector()
            _print_usage(running)
            return _watch(running)
    except (plane.ControlPlaneError, network.NetworkError, node.NodeError, machine.MachineBusy,
            images.ImagesMissing, isolation.IsolationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopped", file=sys.stderr)
        return 0


def _reset(workdir: Path) -> None:
    """Empty a workdir this command made before; refuse to touch any other non-empty directory."""
    if workdir.exists() and any(workdir.iterdir()):
        if not (workdir / _MARKER).exists():
            raise FileExistsError(
                f"{workdir} is not empty and was not made by localplane; pick another --workdir"
            )
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / _MARKER).touch()


def _print_usage(running: cluster.Cluster) -> None:
    kubectl_dir = running.plane.binaries.kubectl.parent
    names = ", ".join(n.name for n in running.nodes)
    pods = (f"Pods run on {names} (kubectl get nodes -o wide)." if running.node else "Pods stay Pending (no node).")
    print(
        f"""
Local cluster is up at {running.plane.server}
  export KUBECONFIG={running.kubeconfig}
  export PATH={kubectl_dir}:$PATH   # the built kubectl
  kubectl get nodes
Logs: {running.plane.workdir}/*.log and node/. {pods} Ctrl-C stops it.
""",
        flush=True,
    )


def _watch(running: cluster.Cluster) -> int:
    """Block until interrupted; if a component dies on its own, show its log and fail."""
    parts = list(running.plane.components.values())
    for each in running.nodes:
        parts += [each.containerd, *([each.kubelet] if each.kubelet else [])]
    while True:
        time.sleep(1)
        for part in parts:
            if not part.running:
                print(f"error: {part.name} exited on its own\n{part.tail()}", file=sys.stderr)
                return 1


if __name__ == "__main__":
    sys.exit(main())
