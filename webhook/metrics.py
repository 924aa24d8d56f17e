"""Prometheus metrics of the webhook: admissions by result and their latency."""

from __future__ import annotations

import os
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess, values
from prometheus_client.core import GaugeMetricFamily

# Admission latency is milliseconds; the API server's budget is timeoutSeconds.
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def share_between_processes(directory: str) -> None:
    """Keep the values of metrics made from now on in files under `directory`, summed over the worker
    processes when scraped (prometheus_client's multiprocess mode): a scrape reaches one worker
    (webhook/workers.py) and must count the admissions of all."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    values.ValueClass = values.MultiProcessValue()


class Metrics:
    """This process's admission counters; `exposition` is what /metrics renders (all workers summed, multiprocess)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.exposition = self.registry  # what /metrics renders
        if registry is None and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            self.exposition = CollectorRegistry()
            multiprocess.MultiProcessCollector(self.exposition)
        self.admissions = Counter(
            "kube_elector_admissions",
            "Admission requests by result (injected, skipped, denied, invalid).",
            ["result"],
            registry=self.registry,
        )
        self._by_result: dict[str, Counter] = {}
        self.latency = Histogram(
            "kube_elector_admission_duration_seconds",
            "Time to answer one admission request.",
            buckets=_BUCKETS,
            registry=self.registry,
        )

    def watch_certificate(self, expiry: Callable[[], float | None]) -> None:
        """`kube_elector_webhook_certificate_expiry_seconds`: the alert in the PrometheusRule reads it. Read
        at scrape time in the scraped process (every worker serves the same certificate), so it is not a
        multiprocess file value."""
        self.exposition.register(_CertificateExpiry(expiry))

    def observe(self, result: str, seconds: float) -> None:
        counter = self._by_result.get(result)
        if counter is None:  # a handful of results: prometheus_client's labels() is the slow part of a count
            counter = self._by_result[result] = self.admissions.labels(result=result)
        counter.inc()
        self.latency.observe(seconds)


class _CertificateExpiry:
    """A collector, not a Gauge: in multiprocess mode a Gauge's function is not exported."""

    def __init__(self, expiry: Callable[[], float | None]) -> None:
        self._expiry = expiry

    def collect(self):  # type: ignore[no-untyped-def]
        yield GaugeMetricFamily("kube_elector_webhook_certificate_expiry_seconds",
                                "Seconds until the served TLS certificate expires.", value=self._expiry() or 0.0)
