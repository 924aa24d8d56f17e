"""Rollout-aware handover in the election state machine: in-memory Lease, fake clock, and a stand-in for
the controller that publishes its hints (controller/succession.py) on the Lease from a pod view."""
from __future__ import annotations

import asyncio

from controller import observed, succession
from elector.election import lock as locks

from tests.controller.test_candidates import T1, T2, pod
from tests.elector.elector_fakes import FakeClock, LeaseStore
from tests.elector.test_election_core import leaders, no_two_leaders

OLD = [pod(f"web-aaa-{i}", created=T1) for i in (1, 2, 3)]


def new_pod(i: int, **kw):
    return pod(f"web-bbb-{i}", created=T2, owner=("ReplicaSet", "web-bbb"), **kw)


class Pods:
    """The pods as the controller sees them; it publishes the hints on each change of pods or of the Lease."""

    def __init__(self, store: LeaseStore, *pods):
        self.store = store
        self.current = list(pods)
        self.failed: set[str] = set()  # nominees that let the Lease lie (controller/observed.py)
        self._seen = None
        self._task = asyncio.ensure_future(self._follow())

    def set(self, *pods):
        self.current = list(pods)
        self.publish()

    def publish(self):
        spec = self.store.spec
        if spec is None:
            return
        lease = {"spec": spec, "metadata": {"annotations": {succession.SUCCESSOR: self.store.successor}}}
        sighting = observed.sight(self._seen, lease, 0.0)
        self._seen = sighting.seen
        if sighting.failed_nominee:
            self.failed.add(sighting.failed_nominee)
        exclude = self.failed | ({self._seen.last_holder} if not spec.get("holderIdentity") else set())
        hints = succession.hints_for(lease, self.current, exclude)
        wanted = locks.Hints(next_leader=hints.next_leader, hand_over_to=hints.hand_over_to)
        if wanted != self.store.hints or (hints.successor is not None and hints.successor != self.store.successor):
            self.store.annotate(wanted, successor=hints.successor)

    async def _follow(self):
        async for _ in self.store.watch():
            self.publish()

    def stop(self):
        self._task.cancel()


def start_all(candidates_, pods: Pods, names, **kw):
    """Start a candidate per name; returns them."""
    return [candidates_(name, **kw) for name in names]


def holders(store: LeaseStore) -> list[str]:
    """Each holder in turn, releases ("") included, consecutive repeats collapsed."""
    out: list[str] = []
    for write in store.writes:
        if not out or out[-1] != write["holderIdentity"]:
            out.append(write["holderIdentity"])
    return out


async def test_a_leader_of_the_old_revision_hands_over_once_to_the_new_ready_pod(clock: FakeClock, store, candidates):
    pods = Pods(store, *OLD)
    electors = start_all(candidates, pods, ["web-aaa-1"])
    await clock.advance(1)
    electors += start_all(candidates, pods, ["web-aaa-2", "web-aaa-3", "web-bbb-1"])
    await clock.advance(5, every=0.05, check=no_two_leaders(*electors))
    assert leaders(*electors) == ["web-aaa-1"]
    pods.set(*OLD, new_pod(1, ready=False))  # created, not Ready yet: nothing moves
    await clock.advance(3, every=0.05, check=no_two_leaders(*electors))
    assert leaders(*electors) == ["web-aaa-1"]
    released_at = clock.now()
    pods.set(*OLD, new_pod(1))
    await clock.advance(0.01)
    assert leaders(*electors) == ["web-bbb-1"]
    assert clock.now() - released_at <= 0.011  # no waiting: the nominee takes the Lease at once
    # the old pods go one by one; the leader stays where it is
    pods.set(*OLD[:2], pod("web-aaa-3", created=T1, deleting=True), new_pod(1), new_pod(2))
    await clock.advance(20, every=0.05, check=no_two_leaders(*electors))
    assert holders(store) == ["web-aaa-1", "", "web-bbb-1"]
    assert store.successor == ""  # the new term cleared the nomination
    assert electors[-1].view().term == 1


async def test_the_other_followers_leave_the_nominee_the_lease_even_when_it_is_slow(clock, store, candidates):
    pods = Pods(store, *OLD)
    electors = start_all(candidates, pods, ["web-aaa-1", "web-aaa-2", "web-aaa-3"])
    await clock.advance(1)
    nominee = candidates("web-bbb-1", run=False)  # Ready, but its elector is not running yet
    pods.set(*OLD, new_pod(1))  # the controller asks the leader to hand over to it
    await clock.advance(0.1)
    assert store.successor == "web-bbb-1" and not store.spec["holderIdentity"]
    await clock.advance(14, every=0.05, check=no_two_leaders(*electors))
    assert leaders(*electors) == []  # respected for a lease duration (from when they saw the release)
    await clock.advance(3, every=0.05)
    assert len(leaders(*electors)) == 1  # then a normal race
    # and the new leader, old revision too, does not name the nominee that let the Lease lie again
    await clock.advance(60, every=0.05, check=no_two_leaders(*electors))
    assert holders(store)[-2:] == ["", leaders(*electors)[0]]
    assert not nominee.view().is_leader


async def test_a_nominee_that_dies_is_given_up_at_once(clock, store, candidates):
    pods = Pods(store, *OLD, new_pod(1))
    electors = start_all(candidates, pods, ["web-aaa-1", "web-aaa-2", "web-aaa-3"])
    await clock.advance(1)
    await electors[0].release()
    assert store.successor == "web-bbb-1"
    await clock.advance(1, every=0.05)
    assert leaders(*electors) == []
    died = clock.now()
    pods.set(*OLD)  # deleted with no grace: gone from the view
    await clock.advance(0.5, every=0.01, check=no_two_leaders(*electors))
    assert len(leaders(*electors)) == 1 and leaders(*electors)[0] != "web-aaa-1"
    assert clock.now() - died <= 0.5


async def test_a_deleting_leader_leads_until_its_sigterm_and_a_deleting_follower_never_takes_over(
        clock, store, candidates):
    pods = Pods(store, *OLD)
    electors = start_all(candidates, pods, ["web-aaa-1", "web-aaa-2", "web-aaa-3"])
    await clock.advance(1)
    pods.set(pod("web-aaa-1", created=T1, deleting=True), pod("web-aaa-2", created=T1, deleting=True), OLD[2])
    await clock.advance(10, every=0.05, check=no_two_leaders(*electors))
    assert leaders(*electors) == ["web-aaa-1"]  # its app keeps leading until the kubelet stops it
    await electors[0].release()  # the sidecar's SIGTERM, after the app: names the only one not leaving
    await clock.advance(5, every=0.05, check=no_two_leaders(*electors))
    assert holders(store) == ["web-aaa-1", "", "web-aaa-3"]


async def test_without_a_pod_view_nothing_changes(clock, store, candidates):
    electors = [candidates(n) for n in ("a", "b", "c")]
    await clock.advance(1)
    assert leaders(*electors) == ["a"]
    await electors[0].release()
    assert store.successor == ""
    await clock.advance(5, every=0.05, check=no_two_leaders(*electors))
    assert leaders(*electors) in (["b"], ["c"])


async def test_with_a_release_timeout_the_app_hears_first_and_the_lease_waits_for_it(clock, store, candidates):
    pods = Pods(store, *OLD)
    a = start_all(candidates, pods, ["web-aaa-1"], grace=3)[0]
    await clock.advance(1)
    others = start_all(candidates, pods, ["web-aaa-2", "web-aaa-3"], grace=3)
    await clock.advance(1)
    pods.set(*OLD, new_pod(1))  # Ready, but its elector is not running: the handover names it anyway
    await clock.advance(0.01)
    assert leaders(a, *others) == []  # the app is told at once ...
    assert store.spec["holderIdentity"] == "web-aaa-1"  # ... while the Lease stays held for it
    await clock.advance(2.5, every=0.05)
    assert store.spec["holderIdentity"] == "web-aaa-1" and leaders(a, *others) == []
    await clock.advance(0.6, every=0.05)  # the timeout passed: hand over, naming the successor
    assert holders(store)[-2:] == ["web-aaa-1", ""] and store.successor == "web-bbb-1"


async def test_a_post_release_during_the_wait_hands_over_at_once(clock, store, candidates):
    pods = Pods(store, *OLD)
    a = start_all(candidates, pods, ["web-aaa-1"], grace=30)[0]
    await clock.advance(1)
    others = start_all(candidates, pods, ["web-aaa-2", "web-aaa-3"], grace=30)
    pods.set(*OLD, new_pod(1))
    await clock.advance(1, every=0.05)
    assert store.spec["holderIdentity"] == "web-aaa-1" and not a.view().is_leader
    a.request_release()  # the app's POST /release
    await clock.advance(0.05)
    assert holders(store)[-2:] == ["web-aaa-1", ""] and store.successor == "web-bbb-1"  # long before the 30 s
    assert leaders(a, *others) == []  # the others leave it to the nominee (no elector runs for it here)


async def test_a_nominee_that_will_not_lead_declines_at_once(clock, store, candidates):
    pods = Pods(store, *OLD)
    a, b, c = start_all(candidates, pods, ["web-aaa-1", "web-aaa-2", "web-aaa-3"])
    await clock.advance(1)
    a.request_release()  # the app's POST /release: a sits out a lease duration, names b (the oldest other)
    await clock.advance(0.1)
    assert leaders(a, b, c) == ["web-aaa-2"]
    b.request_release()  # names a, which sits out: a clears the name, c takes over without waiting
    await clock.advance(0.1, every=0.01, check=no_two_leaders(a, b, c))
    assert leaders(a, b, c) == ["web-aaa-3"]
    assert holders(store) == ["web-aaa-1", "", "web-aaa-2", "", "web-aaa-3"]


async def test_a_release_names_the_newest_hint_even_if_the_watch_missed_it(clock, store, candidates):
    a, b = candidates("a"), candidates("b")
    await clock.advance(1)
    (leader,) = [e for e in (a, b) if e.view().is_leader]
    other = b if leader is a else a
    leader.lock.deaf = True  # its watch delivers nothing: the hint below reaches it only through a read
    store.annotate(locks.Hints(next_leader=other.config.identity))
    await clock.advance(0.01)
    assert await leader.release()
    assert store.successor == other.config.identity
