"""Optional: lead only while the app answers its health URL with 2xx (a hung app gives the role away).

Unhealthy before the first success, and after `failures` failed checks in a row (like a kubelet
probe's failureThreshold).
"""
from __future__ import annotations

import logging
import urllib.parse

from elector.election import clock as clocks
from elector.kube import httpclient

__all__ = ["AppHealth"]

logger = logging.getLogger("elector.apphealth")


class AppHealth:
    def __init__(self, url: str, *, clock: clocks.Clock, period: float, failures: int = 3) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.client = httpclient.Client(f"{parsed.scheme}://{parsed.netloc}", timeout=period)
        self.path = (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
        self.clock = clock
        self.period = period
        self.threshold = failures
        self._failures = failures
        self._ever_ok = False

    def ok(self) -> bool:
        return self._ever_ok and self._failures < self.threshold

    async def run(self) -> None:
        while True:
            before = self.ok()
            try:
                response = await clocks.race_timeout(self.clock, self.client.request("GET", self.path), self.period)
                healthy = 200 <= response.status < 300
            except (httpclient.TransportError, TimeoutError, OSError):
                healthy = False
            if healthy:
                self._failures, self._ever_ok = 0, True
            else:
                self._failures += 1
            if self.ok() != before:
                logger.info("app health changed", extra={"fields": {"healthy": self.ok()}})
            await self.clock.sleep(self.period)
