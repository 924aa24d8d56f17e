"""The controller's own election: one active replica, with the project's elector (elector/election/loop.py)
on Lease `kube-elector-controller`, run in its own thread and event loop.

`leading()` is the live view (it turns False the moment the claim can no longer be renewed in time);
`on_change` hears every change of it. Stopping releases the Lease, so the standby takes over at once.
"""
from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Callable, Optional

from elector.election import clock as clocks
from elector.election import loop as election
from elector.kube import httpclient
from elector.kube import kubeconfig
from elector.kube import leaselock
from elector import settings

__all__ = ["Leadership"]

log = logging.getLogger("kube_elector.controller")


class Leadership:
    """The election in a thread and event loop of its own, so the threaded controller can ask `leading()` any time."""

    def __init__(self, config: settings.ElectionConfig, *, kubeconfig_path: Optional[str],
                 on_change: Callable[[bool], None]) -> None:
        self.config = config
        self._kubeconfig = kubeconfig_path
        self._on_change = on_change
        self._elector: Optional[election.LeaderElector] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stopped = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._leading = False
        self._stop_event = asyncio.Event()  # not bound to a loop until first awaited

    def leading(self) -> bool:
        return self._elector is not None and self._elector.view().is_leader

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="leadership", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        loop = self._loop
        if loop is not None and not self._stopped.is_set():
            loop.call_soon_threadsafe(self._stop_event.set)
        self._stopped.wait(timeout)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:
            log.exception("leadership failed", extra={"event": "leadership_failed"})
        finally:
            self._stopped.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        clock = clocks.MonotonicClock()
        if self._kubeconfig:
            creds = kubeconfig.from_kubeconfig([self._kubeconfig], now=clock.now)
        else:
            creds = kubeconfig.in_cluster(os.environ, sa_dir=settings.SERVICE_ACCOUNT_DIR, now=clock.now)
        client = httpclient.Client(creds.server, ssl_context=creds.ssl_context, token=creds.token,
                                   timeout=self.config.request_timeout)
        lock = leaselock.LeaseLock(client, namespace=self.config.namespace, name=self.config.name)
        self._elector = elector = election.LeaderElector(self.config, lock, clock=clock)
        elector.add_listener(self._heard)
        runner = asyncio.ensure_future(elector.run())
        await self._stop_event.wait()
        elector.resign()
        runner.cancel()
        await asyncio.wait({runner}, timeout=self.config.request_timeout)
        if elector.holds_lease():
            await elector.release()
        await client.close()

    def _heard(self, view: election.View) -> None:
        if view.is_leader != self._leading:
            self._leading = view.is_leader
            log.info("leading" if view.is_leader else "not leading",
                     extra={"event": "leadership", "leading": view.is_leader})
            self._on_change(view.is_leader)
