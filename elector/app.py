"""Wiring: credentials -> client -> Lease lock -> elector; the HTTP servers; signals and shutdown.

The elector needs only its own Lease (get, update, watch by name): the kube-elector controller creates
the Lease and its Role, chooses successors, moves the leader label and the leader Service, and records
the Events (docs/security.md).

Shutdown on SIGTERM/SIGINT: stop claiming leadership, optionally wait (bounded by
--release-timeout) for the app's POST /release while the Lease stays renewed, then release the Lease
(after re-checking the fresh holder) and return 0.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Mapping, Optional

from elector.serve import routes as api
from elector.kube import apimetrics
from elector.serve import apphealth
from elector.election import clock as clocks
from elector.election import loop as election
from elector.kube import httpclient
from elector.serve import httpserver
from elector.kube import kubeconfig
from elector.kube import leaselock
from elector import settings as settingses
from elector.serve import status

__all__ = ["run"]

logger = logging.getLogger("elector.app")


def _credentials(cfg: settingses.Settings, env: Mapping[str, str], clock: clocks.Clock) -> kubeconfig.Credentials:
    if cfg.kubeconfig:
        return kubeconfig.from_kubeconfig(list(cfg.kubeconfig), now=clock.now)
    return kubeconfig.in_cluster(env, sa_dir=cfg.service_account_dir, now=clock.now)


async def run(cfg: settingses.Settings, env: Optional[Mapping[str, str]] = None) -> int:
    """Run the sidecar until SIGTERM/SIGINT; returns the exit code.

    Raises `kubeconfig.ConfigError` (no API server credentials) or `settings.SettingsError` (cannot listen).
    """
    env = os.environ if env is None else env
    clock = clocks.MonotonicClock()
    election_cfg = cfg.election
    creds = _credentials(cfg, env, clock)
    api_metrics = apimetrics.ApiMetrics()
    observer = api_metrics.observer(creds.server.split("://", 1)[-1])

    client = httpclient.Client(creds.server, ssl_context=creds.ssl_context, token=creds.token,
                               timeout=election_cfg.request_timeout, observer=observer)
    lock = leaselock.LeaseLock(client, namespace=election_cfg.namespace, name=election_cfg.name)
    background: list[asyncio.Future[None]] = []

    health: Optional[apphealth.AppHealth] = None
    if cfg.app_health_url:
        health = apphealth.AppHealth(cfg.app_health_url, clock=clock, period=election_cfg.retry_period)
        background.append(asyncio.ensure_future(health.run()))
    elector = election.LeaderElector(election_cfg, lock, clock=clock, grace=cfg.release_timeout,
                                     eligible=health.ok if health else (lambda: True))
    board = status.Board(clock)
    elector.add_listener(board.publish)

    stopping = asyncio.Event()
    app_released = asyncio.Event()

    def on_release() -> None:
        app_released.set()
        if not stopping.is_set():
            elector.request_release()

    routes = api.Api(elector, board, on_release=on_release, api_metrics=api_metrics)
    listeners = [("--probe-address", cfg.probe_host, cfg.probe_port, routes.probes),
                 ("--http", cfg.http_host, cfg.http_port, routes.app)]
    if cfg.metrics_host is not None and cfg.metrics_port is not None:
        listeners.append(("--metrics-address", cfg.metrics_host, cfg.metrics_port, routes.metrics))
    servers = []
    for flag, host, port, route in listeners:
        try:
            servers.append(await httpserver.serve(host, port, route))
        except OSError as exc:
            raise settingses.SettingsError(f"{flag}: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    logger.info("started", extra={"fields": {
        "identity": election_cfg.identity, "lease": election_cfg.describe(), "server": creds.server,
        "uid": election_cfg.uid or "none",
        "http": f"{cfg.http_host}:{cfg.http_port}", "probes": f"{cfg.probe_host}:{cfg.probe_port}",
        "lease_duration": election_cfg.lease_duration, "renew_deadline": election_cfg.renew_deadline,
        "retry_period": election_cfg.retry_period}})

    runner = asyncio.ensure_future(elector.run())
    stopper = asyncio.ensure_future(stopping.wait())
    await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if runner.done():  # the loop never ends by itself: surface the bug
        stopper.cancel()
        runner.result()

    # ---- shutdown
    stopping.clear()  # a second signal skips the wait for the app
    was_leading = elector.view().is_leader
    elector.resign()
    if was_leading and cfg.release_timeout > 0:
        logger.info("waiting for the app to release", extra={"fields": {"timeout_s": cfg.release_timeout}})
        waits = [asyncio.ensure_future(app_released.wait()), asyncio.ensure_future(stopping.wait())]
        await asyncio.wait(waits, timeout=cfg.release_timeout, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waits:
            waiter.cancel()
    runner.cancel()
    # Bounded: a loop that failed to stop must not keep the pod from releasing (it has resigned).
    await asyncio.wait({runner}, timeout=election_cfg.request_timeout)
    if not runner.done():
        logger.warning("election loop did not stop; releasing anyway")
    if was_leading or elector.holds_lease():
        await elector.release()
    for task in background:
        task.cancel()
    for server in servers:
        server.close()
    await client.close()
    logger.info("stopped")
    return 0
