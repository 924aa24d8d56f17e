"""Prometheus metrics of the webhook: admissions by result and their latency."""

from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Admission latency is milliseconds; the API server's budget is timeoutSeconds.
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.admissions = Counter(
            "kube_elector_admissions",
            "Admission requests by result (injected, skipped, denied, invalid).",
            ["result"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "kube_elector_admission_duration_seconds",
            "Time to answer one admission request.",
            buckets=_BUCKETS,
            registry=self.registry,
        )

    def watch_certificate(self, expiry: Callable[[], float | None]) -> None:
        """`kube_elector_webhook_certificate_expiry_seconds`: the alert in the PrometheusRule reads it."""
        gauge = Gauge("kube_elector_webhook_certificate_expiry_seconds",
                      "Seconds until the served TLS certificate expires.", registry=self.registry)
        gauge.set_function(lambda: expiry() or 0.0)

    def observe(self, result: str, seconds: float) -> None:
        self.admissions.labels(result=result).inc()
        self.latency.observe(seconds)
