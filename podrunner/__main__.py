"""`python -m podrunner --kubeconfig FILE`: run the pods of a local control plane until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from podrunner.podman import Podman
from podrunner.runner import PodRunner


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m podrunner", description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", type=Path, default=os.environ.get("KUBECONFIG"),
                        help="an admin kubeconfig (default: $KUBECONFIG); e.g. .cluster/kubeconfig of `make cluster`")
    parser.add_argument("--namespace", "-n", action="append", dest="namespaces",
                        help="serve only this namespace (repeatable; default: all)")
    parser.add_argument("--workdir", type=Path, default=Path(".cluster/podrunner"),
                        help="volumes and container logs (default: .cluster/podrunner)")
    parser.add_argument("--node", default="podrunner", help="the node name pods are bound to")
    parser.add_argument("--keep-pods", action="store_true",
                        help="on exit, leave the pod objects (default: delete them, as after a node drain)")
    parser.add_argument("--podman", action="store_true", help="run containers from local images with podman")
    parser.add_argument("--podman-alias", action="append", default=[], metavar="IMAGE=LOCAL",
                        help="with --podman: run LOCAL for IMAGE (a full name or a repository, e.g. "
                             "python=localhost/base-python:bookworm); repeatable")
    args = parser.parse_args(argv)
    if args.kubeconfig is None:
        parser.error("--kubeconfig or $KUBECONFIG is required")
    if os.geteuid() != 0:
        print("python -m podrunner: needs root (network and mount namespaces)", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API call otherwise
    podman = Podman(dict(a.split("=", 1) for a in args.podman_alias)) if args.podman else None
    runner = PodRunner(args.kubeconfig, args.workdir, namespaces=args.namespaces, node=args.node,
                       release_pods=not args.keep_pods, podman=podman)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await runner.run(stop)

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
