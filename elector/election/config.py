"""The election's configuration, beside the election (client-go's LeaderElectionConfig): no flag names.

`ConfigError.field` names what is wrong: a field of `ElectionConfig`, or a timing by its `timings.RANGES`
key; the CLI (elector/settings.py, controller/settings.py) maps it to its own flag.
"""
from __future__ import annotations

import dataclasses

from elector.election import record, timings

__all__ = ["ConfigError", "ElectionConfig"]


class ConfigError(ValueError):
    """An election setting is invalid: `field` says which, so each CLI can name its own flag."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclasses.dataclass(frozen=True)
class ElectionConfig:
    """What the election needs; validated like client-go's NewLeaderElector at construction."""

    name: str
    namespace: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    renew_interval: float = 0.0  # 0: derived (timings.renew_interval); see `renew_every`
    uid: str = ""  # our Pod's uid, written beside the holder: "" where the identity is not a pod name

    def holds(self, rec: "record.LeaderElectionRecord") -> bool:
        """`rec` names us: our identity and, when both sides know it, our Pod's uid (a force-deleted pod
        and its replacement share a name, never a uid)."""
        return (rec.holder_identity == self.identity
                and (not self.uid or not rec.holder_uid or rec.holder_uid == self.uid))

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("name", "required (the Lease name)")
        if not self.namespace:
            raise ConfigError("namespace", "required")
        if not self.identity:
            raise ConfigError("identity", "empty")
        try:
            timings.check_timings(self.lease_duration, self.renew_deadline, self.retry_period)
            timings.renew_interval(self.lease_duration, self.renew_deadline, self.retry_period, self.renew_interval)
        except timings.TimingError as exc:
            raise ConfigError(exc.name, str(exc)) from None

    @property
    def renew_every(self) -> float:
        """Seconds between a leader's renewals (two fifths of the lease by default, not the retry period: the
        guarantees do not depend on it, the API server's write load does)."""
        return timings.renew_interval(self.lease_duration, self.renew_deadline, self.retry_period,
                                      self.renew_interval)

    @property
    def request_timeout(self) -> float:
        """Per-request timeout: client-go's max(1s, RenewDeadline/2), so one hung call cannot cost the lease."""
        return max(1.0, self.renew_deadline / 2)

    def describe(self) -> str:
        """`namespace/name`, for logs and metrics."""
        return f"{self.namespace}/{self.name}"
