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
import dataclasses
import logging
import os
import signal
from typing import Any, Awaitable, Callable, Mapping, Optional, Protocol

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

__all__ = ["run", "build", "listen", "shutdown", "Runnable", "Sidecar"]

logger = logging.getLogger("elector.app")


class Runnable(Protocol):
    """A part that runs beside the election (a listener, a probe, the client): started in order, stopped in
    reverse after the release, so shutdown is one loop whatever is switched on (controller-runtime's runnables)."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...


@dataclasses.dataclass
class Background:
    """A coroutine run as a task while the sidecar runs (the app health probe)."""

    make: Callable[[], Awaitable[None]]
    _task: Optional[asyncio.Future[None]] = None

    async def start(self) -> None:
        self._task = asyncio.ensure_future(self.make())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


@dataclasses.dataclass
class Listener:
    """One HTTP address of the sidecar; `flag` names the setting when the address is taken."""

    flag: str
    host: str
    port: int
    route: Any
    limits: httpserver.Limits = httpserver.Limits()
    _server: Any = None

    async def start(self) -> None:
        try:
            self._server = await httpserver.serve(self.host, self.port, self.route, self.limits)
        except OSError as exc:
            raise settingses.SettingsError(
                f"{self.flag}: cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from None

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()


@dataclasses.dataclass
class Closing:
    """Something that needs only closing at the end (the API server client and its connections)."""

    client: httpclient.Client

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        await self.client.close()


@dataclasses.dataclass
class Sidecar:
    """The built sidecar: the elector and the parts around it, before anything runs."""

    cfg: settingses.Settings
    server: str
    elector: election.LeaderElector
    runnables: list[Runnable]
    stopping: asyncio.Event
    app_released: asyncio.Event


def _credentials(cfg: settingses.Settings, env: Mapping[str, str], clock: clocks.Clock) -> kubeconfig.Credentials:
    if cfg.kubeconfig:
        return kubeconfig.from_kubeconfig(list(cfg.kubeconfig), now=clock.now)
    return kubeconfig.in_cluster(env, sa_dir=cfg.service_account_dir, now=clock.now)


def build(cfg: settingses.Settings, env: Mapping[str, str]) -> Sidecar:
    """Credentials -> client -> Lease lock -> elector, its status board, routes and optional parts.

    Raises `kubeconfig.ConfigError` (no API server credentials).
    """
    clock = clocks.MonotonicClock()
    election_cfg = cfg.election
    creds = _credentials(cfg, env, clock)
    api_metrics = apimetrics.ApiMetrics()
    observer = api_metrics.observer(creds.server.split("://", 1)[-1])

    client = httpclient.Client(creds.server, ssl_context=creds.ssl_context, token=creds.token,
                               timeout=election_cfg.request_timeout, observer=observer)
    lock = leaselock.LeaseLock(client, namespace=election_cfg.namespace, name=election_cfg.name)
    runnables: list[Runnable] = [Closing(client)]

    health: Optional[apphealth.AppHealth] = None
    if cfg.app_health_url:
        health = apphealth.AppHealth(cfg.app_health_url, clock=clock, period=election_cfg.retry_period)
        runnables.append(Background(health.run))
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
    # The app's port is on localhost, its clients hold SSE streams and long polls: one address, more room.
    local = httpserver.Limits(max_connections=256, max_per_ip=256)
    runnables.append(Listener("--probe-address", cfg.probe_host, cfg.probe_port, routes.probes))
    runnables.append(Listener("--http", cfg.http_host, cfg.http_port, routes.app, local))
    if cfg.metrics_host is not None and cfg.metrics_port is not None:
        runnables.append(Listener("--metrics-address", cfg.metrics_host, cfg.metrics_port, routes.metrics))
    return Sidecar(cfg, creds.server, elector, runnables, stopping, app_released)


async def listen(sidecar: Sidecar) -> None:
    """Start every runnable and the signal handlers; `settings.SettingsError` if an address is taken."""
    for runnable in sidecar.runnables:
        await runnable.start()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, sidecar.stopping.set)
    cfg, election_cfg = sidecar.cfg, sidecar.cfg.election
    logger.info("started", extra={"fields": {
        "identity": election_cfg.identity, "lease": election_cfg.describe(), "server": sidecar.server,
        "uid": election_cfg.uid or "none",
        "http": f"{cfg.http_host}:{cfg.http_port}", "probes": f"{cfg.probe_host}:{cfg.probe_port}",
        "lease_duration": election_cfg.lease_duration, "renew_deadline": election_cfg.renew_deadline,
        "retry_period": election_cfg.retry_period}})


async def shutdown(sidecar: Sidecar, runner: asyncio.Future[None]) -> None:
    """Stop claiming leadership, give the app its --release-timeout to release, release the Lease if it
    may still be ours, then stop the runnables in reverse order."""
    cfg, elector = sidecar.cfg, sidecar.elector
    sidecar.stopping.clear()  # a second signal skips the wait for the app
    was_leading = elector.view().is_leader
    elector.resign()
    if was_leading and cfg.release_timeout > 0:
        logger.info("waiting for the app to release", extra={"fields": {"timeout_s": cfg.release_timeout}})
        waits = [asyncio.ensure_future(sidecar.app_released.wait()), asyncio.ensure_future(sidecar.stopping.wait())]
        await asyncio.wait(waits, timeout=cfg.release_timeout, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waits:
            waiter.cancel()
    runner.cancel()
    # Bounded: a loop that failed to stop must not keep the pod from releasing (it has resigned).
    await asyncio.wait({runner}, timeout=cfg.election.request_timeout)
    if not runner.done():
        logger.warning("election loop did not stop; releasing anyway")
    if was_leading or elector.holds_lease():
        await elector.release()
    for runnable in reversed(sidecar.runnables):
        await runnable.stop()


async def run(cfg: settingses.Settings, env: Optional[Mapping[str, str]] = None) -> int:
    """Run the sidecar until SIGTERM/SIGINT; returns the exit code.

    Raises `kubeconfig.ConfigError` (no API server credentials) or `settings.SettingsError` (cannot listen).
    """
    sidecar = build(cfg, os.environ if env is None else env)
    await listen(sidecar)
    runner = asyncio.ensure_future(sidecar.elector.run())
    stopper = asyncio.ensure_future(sidecar.stopping.wait())
    await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if runner.done():  # the loop never ends by itself: surface the bug
        stopper.cancel()
        runner.result()
    await shutdown(sidecar, runner)
    logger.info("stopped")
    return 0
