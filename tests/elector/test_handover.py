"""The leader's handover rules (handover.py), with stub hints."""
from __future__ import annotations

from elector.election import handover
from elector.election import hints


class Stub(hints.LeaseHints):
    def __init__(self, *, leaving=False, target="", best="b"):
        super().__init__("a")
        self._leaving, self._target, self._best = leaving, target, best

    def leaving(self):
        return self._leaving

    def handover_target(self, exclude=()):
        return self._target

    def successor(self, exclude=()):
        return "" if self._best in exclude else self._best


def decide(h, now=0.0, *, requested=False, eligible=True, passed_over=()):
    return h.decide(now, release_requested=requested, eligible=eligible, passed_over=passed_over)


def test_reasons_in_order_each_naming_a_successor():
    assert decide(handover.Handover(Stub())) == handover.Step()
    assert decide(handover.Handover(Stub(target="d")), requested=True) == handover.Step(handover.APP_RELEASED, "b")
    assert decide(handover.Handover(Stub()), eligible=False) == handover.Step(handover.UNHEALTHY, "b")
    assert decide(handover.Handover(Stub(target="d"))) == handover.Step(handover.NEWER_REVISION, "d")
    assert decide(handover.Handover(Stub()), eligible=False, passed_over={"b"}) == handover.Step(handover.UNHEALTHY, "")


def test_our_pod_being_deleted_is_no_reason_the_release_on_sigterm_follows_the_app():
    assert decide(handover.Handover(Stub(leaving=True))) == handover.Step()


def test_a_grace_lets_the_app_hear_first_then_hands_over_even_if_the_reason_went_away():
    succession = Stub(target="d")
    h = handover.Handover(succession, grace=5)
    assert decide(h, 10) == handover.Step(wait_for_app=True)
    assert h.waiting and h.wake_at(100) == 15
    succession._target = ""  # the new pod stopped being Ready meanwhile
    assert decide(h, 12) == handover.Step()
    assert decide(h, 15) == handover.Step(handover.NEWER_REVISION, "b")
    h.done()
    assert not h.waiting and h.wake_at(100) == 100


def test_the_apps_release_during_the_grace_hands_over_at_once():
    h = handover.Handover(Stub(target="d"), grace=30)
    assert decide(h, 0).wait_for_app
    assert decide(h, 1, requested=True) == handover.Step(handover.APP_RELEASED, "b")


def test_no_grace_for_an_unhealthy_app():
    assert decide(handover.Handover(Stub(), grace=30), eligible=False) == handover.Step(handover.UNHEALTHY, "b")
