"""Wiring: credentials -> clients -> Lease lock (with our Pod as owner) -> elector -> Events; the HTTP
servers; signals and shutdown. Each API client has its own connection, so that neither Events nor the
leader label can delay a renewal; all of them count into one `ApiMetrics`.

Shutdown on SIGTERM/SIGINT: stop claiming leadership, optionally wait (bounded by
--release-timeout) for the app's POST /release while the Lease stays renewed, then release the Lease
(after re-checking the fresh holder) and return 0.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from typing import Mapping, Optional

from elector import api
from elector import apimetrics
from elector import apphealth
from elector import candidates
from elector import clock as clocks
from elector import election
from elector import events
from elector import httpclient
from elector import httpserver
from elector import kubeconfig
from elector import leaselock
from elector import leaderservice
from elector import owners
from elector import podlabel
from elector import podwatch
from elector import recorder
from elector import settings as settingses
from elector import status

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

    def api_client() -> httpclient.Client:
        return httpclient.Client(creds.server, ssl_context=creds.ssl_context, token=creds.token,
                                 timeout=election_cfg.request_timeout, observer=observer)

    client = api_client()
    owner = owners.pod_reference(cfg.pod_name, cfg.pod_uid)
    if owner is None and cfg.pod_uid:
        logger.warning("POD_UID is not a Pod's uid: the Lease will not be owned by this pod",
                       extra={"fields": {"pod_uid": cfg.pod_uid}})
    lock = leaselock.LeaseLock(client, namespace=election_cfg.namespace, name=election_cfg.name, owner=owner)
    background: list[asyncio.Future[None]] = []

    health: Optional[apphealth.AppHealth] = None
    if cfg.app_health_url:
        health = apphealth.AppHealth(cfg.app_health_url, clock=clock, period=election_cfg.retry_period)
        background.append(asyncio.ensure_future(health.run()))
    pods: Optional[podwatch.PodWatch] = None
    succession = candidates.NO_SUCCESSION
    if cfg.rollout_aware and election_cfg.identity != cfg.pod_name:
        logger.warning("--identity is not the pod's name: running without rollout awareness",
                       extra={"fields": {"identity": election_cfg.identity, "pod": cfg.pod_name}})
    elif cfg.rollout_aware:
        pods = podwatch.PodWatch(api_client(), namespace=cfg.pod_namespace, election=election_cfg.name,
                                 clock=clock, retry=election_cfg.retry_period)
        succession = candidates.Succession(election_cfg.identity, pods.view)
        background.append(asyncio.ensure_future(pods.run()))
    elector = election.LeaderElector(election_cfg, lock, clock=clock, succession=succession,
                                     grace=cfg.release_timeout,
                                     eligible=health.ok if health else (lambda: True))
    if pods is not None:
        pods.add_listener(elector.candidates_changed)
    board = status.Board(clock)
    elector.add_listener(board.publish)
    event_client = api_client()
    events_out = recorder.Recorder(event_client, namespace=election_cfg.namespace, lease=election_cfg.name,
                                   instance=election_cfg.identity, clock=clock, metrics=elector.metrics)
    elector.add_acquisition_listener(lambda acquired: events_out.record(
        events.became_leader(election_cfg.identity, term=acquired.term, cause=acquired.cause,
                             previous=acquired.previous), lease_uid=acquired.lease_uid))
    background.append(asyncio.ensure_future(events_out.run()))
    labeler: Optional[podlabel.LeaderLabel] = None
    if cfg.leader_label:
        labeler = podlabel.LeaderLabel(api_client(), namespace=cfg.pod_namespace, pod=cfg.pod_name,
                                       clock=clock, retry=election_cfg.retry_period)
        elector.add_listener(labeler.on_view)
        background.append(asyncio.ensure_future(labeler.run()))
    router: Optional[leaderservice.LeaderService] = None
    if cfg.leader_service:
        me = {"name": cfg.pod_name, "namespace": cfg.pod_namespace, "uid": cfg.pod_uid, "ip": cfg.pod_ip}
        router = leaderservice.LeaderService(api_client(), namespace=cfg.pod_namespace, service=cfg.leader_service,
                                             pod=me, clock=clock, retry=election_cfg.retry_period)
        elector.add_listener(router.on_view)
        background.append(asyncio.ensure_future(router.run()))

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
        "owner": f"pod/{owner['name']}" if owner else "none",
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
    flushes = [events_out.flush()] + ([labeler.flush()] if labeler is not None else [])
    if router is not None:  # after the release: a successor takes the Service over, or we empty it
        flushes.append(router.hand_over(wait=min(1.0, election_cfg.request_timeout / 2)))
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.gather(*flushes), election_cfg.request_timeout)
    for task in background:
        task.cancel()
    for server in servers:
        server.close()
    await client.close()
    await event_client.close()
    logger.info("stopped")
    return 0
