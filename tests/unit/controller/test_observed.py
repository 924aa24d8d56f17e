"""controller.observed: holders seen on the controller's own clock, and the Events of new terms."""
from __future__ import annotations

from controller import observed


def lease(holder: str, *, renew: str = "t1", transitions: int = 1, successor: str = "", duration: int = 15) -> dict:
    notes = {"elector.dev/successor": successor} if successor else {}
    return {"spec": {"holderIdentity": holder, "renewTime": renew, "leaseTransitions": transitions,
                     "leaseDurationSeconds": duration}, "metadata": {"annotations": notes}}


def test_a_claim_is_valid_for_its_duration_from_when_we_saw_it_change():
    first = observed.sight(None, lease("a"), now=100.0)
    assert first.event is None  # no Event for a term we did not see begin
    assert first.seen.valid(114.9) and not first.seen.valid(115.0)
    same = observed.sight(first.seen, lease("a"), now=110.0)  # the same record again: the clock does not restart
    assert same.seen.seen_at == 100.0
    renewed = observed.sight(same.seen, lease("a", renew="t2"), now=110.0)
    assert renewed.seen.expiry() == 125.0 and renewed.event is None


def test_each_new_term_becomes_one_event_with_its_cause():
    held = observed.sight(None, lease("a"), 0).seen
    released = observed.sight(held, lease("", transitions=1, successor="b"), 1)
    assert released.event is None and released.seen.last_holder == "a"
    handed = observed.sight(released.seen, lease("b", transitions=2), 2)
    assert handed.event.note == "b became leader (term 2): a handed the Lease over to it" and not handed.failed_nominee
    taken = observed.sight(handed.seen, lease("c", transitions=3), 30)
    assert taken.event.action == "TakeOver" and "b stopped renewing" in taken.event.note


def test_a_nominee_that_another_overtook_has_failed():
    released = observed.sight(observed.sight(None, lease("a"), 0).seen, lease("", successor="b"), 1)
    overtaken = observed.sight(released.seen, lease("c", transitions=2), 17)
    assert overtaken.failed_nominee == "b" and overtaken.event.note.endswith("a released the Lease")
