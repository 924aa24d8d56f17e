"""The API client's metrics, under client-go's names: requests by method and code, and their latency.

`rest_client_requests_total{code,host,method}` counts every request to the API server (code
`<error>` when it failed below HTTP: refused, reset, timed out; method `WATCH` for the opening of a
watch, whose code is that of its response head); `rest_client_request_duration_seconds{host,verb}`
is the time to the response (to its head, for a watch), with client-go's buckets.
"""
from __future__ import annotations

import bisect
import collections
import dataclasses

from elector.ops import metrics as metricses

__all__ = ["ApiMetrics", "BUCKETS"]

BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)  # client-go's


@dataclasses.dataclass
class _Histogram:
    counts: list[int] = dataclasses.field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds


class ApiMetrics:
    """Shared by every API client of the process; `observer(host)` is the hook a client calls."""

    def __init__(self) -> None:
        self.requests: collections.Counter[tuple[str, str, str]] = collections.Counter()  # (code, host, method)
        self.latency: dict[tuple[str, str], _Histogram] = {}  # (host, verb)

    def observer(self, host: str) -> "_Observer":
        return _Observer(self, host)

    def observe(self, host: str, method: str, code: str, seconds: float) -> None:
        self.requests[(code, host, method)] += 1
        self.latency.setdefault((host, method), _Histogram()).observe(seconds)

    def render(self) -> str:
        lines = metricses.family(
            "rest_client_requests_total", "counter",
            "Number of HTTP requests to the API server, partitioned by status code, method, and host.",
            [({"code": code, "host": host, "method": method}, count)
             for (code, host, method), count in sorted(self.requests.items())])
        name = "rest_client_request_duration_seconds"
        lines += metricses.header(name, "histogram", "Request latency in seconds. Broken down by verb and host.")
        for (host, verb), histogram in sorted(self.latency.items()):
            labels = {"host": host, "verb": verb}
            cumulative = 0
            for bound, count in zip([*map(str, BUCKETS), "+Inf"], histogram.counts):
                cumulative += count
                lines.append(metricses.sample(f"{name}_bucket", {**labels, "le": bound}, cumulative))
            lines.append(metricses.sample(f"{name}_sum", labels, histogram.total))
            lines.append(metricses.sample(f"{name}_count", labels, cumulative))
        return "\n".join(lines) + "\n"


@dataclasses.dataclass(frozen=True)
class _Observer:
    registry: ApiMetrics
    host: str

    def __call__(self, method: str, code: str, seconds: float) -> None:
        self.registry.observe(self.host, method, code, seconds)
