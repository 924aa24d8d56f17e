"""Our own term as leader: the state an acquisition starts and a step-down ends, kept in one place so
that no path can update half of it."""
from __future__ import annotations

import dataclasses
from typing import Optional

from elector.election import config as configs

__all__ = ["Term"]


@dataclasses.dataclass
class Term:
    """One candidate's term; `leading` False between terms (the other fields are then stale or None)."""

    leading: bool = False
    resigning: bool = False  # stopped claiming (shutdown, handover) while the Lease may still name us
    valid_until: float = 0.0  # the claim ends here: send time of the last good write + renew deadline
    next_renew: float = 0.0  # when the leader writes the Lease next
    number: Optional[int] = None  # the Lease's leaderTransitions when the term began
    fencing_token: Optional[str] = None  # the Lease's resourceVersion when the term began

    def claims(self, now: float) -> bool:
        """Whether we may act as leader now: leading, not resigning, and the claim has not run out."""
        return self.leading and not self.resigning and now < self.valid_until

    def begin(self, number: int, fencing_token: str, sent: float, config: configs.ElectionConfig) -> None:
        """A write of ours sent at `sent` made us the holder."""
        self.leading, self.number, self.fencing_token = True, number, fencing_token
        self.renewed(sent, config)

    def renewed(self, sent: float, config: configs.ElectionConfig) -> None:
        """A renewal sent at `sent` succeeded: the claim runs a renew deadline from its send time."""
        self.valid_until = sent + config.renew_deadline
        self.next_renew = sent + config.renew_every

    def end(self) -> None:
        """The term is over (stepped down, released, or the Lease taken)."""
        self.leading, self.number, self.fencing_token = False, None, None
