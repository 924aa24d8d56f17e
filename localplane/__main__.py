"""`python -m localplane` (what `make cluster` runs): a local control plane in the foreground.

Each run starts from an empty workdir, so a cluster never inherits state (or a
dead port) from the previous one. Ctrl-C or SIGTERM stops it cleanly.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time
from pathlib import Path

from localplane import binaries, plane

_MARKER = ".localplane-workdir"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localplane", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir",
        type=Path,
        default=binaries.ROOT / ".cluster",
        help="PKI, kubeconfig, etcd data, logs (wiped at start)",
    )
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
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with plane.ControlPlane.start(workdir, bins=bins) as cluster:
            _print_usage(cluster)
            return _watch(cluster)
    except plane.ControlPlaneError as exc:
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


def _print_usage(cluster: plane.ControlPlane) -> None:
    kubectl_dir = cluster.binaries.kubectl.parent
    print(
        f"""
Local control plane is up at {cluster.server}
  export KUBECONFIG={cluster.kubeconfig}
  export PATH={kubectl_dir}:$PATH   # the built kubectl
  kubectl version
Logs: {cluster.workdir}/*.log. Pods stay Pending (no kubelet, no scheduler). Ctrl-C stops it.
""",
        flush=True,
    )


def _watch(cluster: plane.ControlPlane) -> int:
    """Block until interrupted; if a component dies on its own, show its log and fail."""
    while True:
        time.sleep(1)
        for part in cluster.components.values():
            if not part.running:
                print(f"error: {part.name} exited on its own\n{part.tail()}", file=sys.stderr)
                return 1


if __name__ == "__main__":
    sys.exit(main())
