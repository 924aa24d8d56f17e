"""`kube-elector-controller`: run until SIGTERM, then release the controller's Lease and exit 0."""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Optional, Sequence

from controller import health, kube, leadership, manager
from controller import settings as settingses
from elector import settings as electorsettings
from webhook import logs

log = logging.getLogger("kube_elector.controller")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Exit 2 on bad flags or an unusable health address, 1 without an API server; else 0 once stopped by a signal."""
    try:
        cfg = settingses.parse(sys.argv[1:] if argv is None else argv, os.environ)
    except electorsettings.SettingsError as exc:
        print(f"kube-elector-controller: {exc}", file=sys.stderr)
        return 2
    if cfg.log_format == "json":
        logs.setup(cfg.log_level)
    else:
        logging.basicConfig(level=cfg.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    try:
        api = kube.Api(kube.connect(cfg.kubeconfig))
    except Exception as exc:  # no in-cluster config, unreadable kubeconfig
        print(f"kube-elector-controller: cannot reach the API server: {exc}", file=sys.stderr)
        return 1
    lead = leadership.Leadership(cfg.election, kubeconfig_path=str(cfg.kubeconfig) if cfg.kubeconfig else None,
                                 on_change=lambda leading: work.leadership_changed(leading))
    work = manager.Manager(api, identity=cfg.election.identity, leading=lead.leading)
    try:
        server = health.HealthServer(cfg.health_host, cfg.health_port, ready=work.synced, metrics=work.metrics)
    except OSError as exc:
        print(f"kube-elector-controller: --health-address: cannot listen: {exc.strerror or exc}", file=sys.stderr)
        return 2
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    runnables: list[manager.Runnable] = [server, work, lead]
    for runnable in runnables:
        runnable.start()
    log.info("started", extra={"event": "started", "identity": cfg.election.identity,
                               "lease": cfg.election.describe(), "health": f"{cfg.health_host}:{server.port}"})
    stopping.wait()
    for runnable in reversed(runnables):
        runnable.stop()
    log.info("stopped", extra={"event": "stopped"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
