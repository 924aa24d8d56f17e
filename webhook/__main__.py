"""`kube-elector-webhook`: settings -> certificates -> HTTPS server (uvicorn)."""

from __future__ import annotations

import logging
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from webhook import app as webapp
from webhook import draining, guard, kube, logs, metrics, settings, tls, workers

log = logging.getLogger("kube_elector.webhook")


def main(argv: list[str] | None = None) -> int:
    """Exit 1 when it cannot start (settings, open-file limit, API, first certificate); else serve until
    SIGTERM, draining first so no admission in flight fails."""
    try:
        cfg = settings.load(sys.argv[1:] if argv is None else argv)
    except settings.SettingsError as exc:
        print(f"kube-elector-webhook: {exc}", file=sys.stderr)
        return 1
    logs.setup(cfg.log_level)
    try:
        guard.raise_open_files(cfg.limits)
    except ValueError as exc:
        print(f"kube-elector-webhook: {exc}", file=sys.stderr)
        return 1
    for key, value in cfg.removed_settings.items():
        log.warning(f"setting {key} is no longer used and is ignored: {settings.REMOVED[key]}",
                    extra={"event": "setting_removed", "setting": key, "value": value})
    if cfg.cert_mode == "self-managed":  # its Secret and caBundle: the webhook's only API use
        try:
            api = kube.Api(kube.connect(cfg.kubeconfig))
        except Exception as exc:  # no in-cluster config, unreadable kubeconfig
            print(f"kube-elector-webhook: cannot reach the Kubernetes API: {exc}; "
                  "set --kubeconfig or run in a cluster", file=sys.stderr)
            return 1
        source: Any = tls.SelfManagedSource(api, cfg, Path(tempfile.mkdtemp(prefix="kube-elector-tls-")))
    else:  # files: no API client at all
        source = tls.FileSource(cfg.tls_cert_file, cfg.tls_key_file)
    source.refresh()
    if not source.ready:
        print("kube-elector-webhook: no usable certificate yet; see the log line above", file=sys.stderr)
        return 1
    processes = cfg.workers or workers.default_processes()
    if processes > 1:
        metrics.share_between_processes(tempfile.mkdtemp(prefix="kube-elector-metrics-"))
    application = webapp.create_app(cfg, ready=lambda: source.ready, cert_expiry=source.expiry_seconds)

    def refresh_certificates() -> None:  # blocking file and API I/O: kept off the event loop
        while True:
            time.sleep(cfg.cert_reload_seconds)
            source.refresh()

    def start() -> None:  # in each server process
        if processes > 1 and isinstance(source, tls.SelfManagedSource):
            source.use_directory(Path(tempfile.mkdtemp(prefix="kube-elector-tls-")))
        threading.Thread(target=refresh_certificates, name="certificates", daemon=True).start()

    server = draining.DrainingServer(
        uvicorn.Config(
            draining.closing_when(application, lambda: server.draining), host=cfg.host, port=cfg.listen_port,
            log_config=None, access_log=False, loop="uvloop",  # TLS: guard's options (webhook/handshakes.py)
            **guard.uvicorn_options(cfg.limits, lambda: source.context),
        ),
        drain_seconds=cfg.shutdown_drain_seconds,
    )
    log.info("serving", extra={"event": "serving", "scheme": "https", "port": cfg.listen_port, "cert_mode": cfg.cert_mode,
                               "image": cfg.image, "native_sidecar": cfg.native_sidecar, "processes": processes})
    return workers.serve(server, processes, start=start)


if __name__ == "__main__":
    sys.exit(main())
