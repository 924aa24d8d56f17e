"""The election state machine against an in-memory Lease, driven by a fake clock (no real waiting)."""
from __future__ import annotations

import asyncio
import re

from elector.election import lock as locks
from elector.election import record

from tests.unit.elector.fakes import FakeClock, LeaseStore


def leaders(*electors):
    return [e.config.identity for e in electors if e.view().is_leader]


def no_two_leaders(*electors):
    def check():
        assert len(leaders(*electors)) <= 1, leaders(*electors)
    return check


async def test_single_candidate_creates_lease_with_micro_times(clock: FakeClock, store: LeaseStore, candidates):
    a = candidates("a")
    await clock.advance(0.1)
    view = a.view()
    assert view.is_leader and view.leader == "a" and view.term == 0
    assert view.fencing_token == str(store.rv)
    assert store.spec["holderIdentity"] == "a"
    assert store.spec["leaseDurationSeconds"] == 15
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", store.spec["renewTime"])
    assert store.spec["acquireTime"] == store.spec["renewTime"]


async def test_three_candidates_one_leader_renewing_every_two_fifths_of_the_lease(clock, store, candidates):
    electors = [candidates(n) for n in "abc"]
    await clock.advance(60, every=0.05, check=no_two_leaders(*electors))
    assert len(leaders(*electors)) == 1
    holder = leaders(*electors)[0]
    renewals = [w for w in store.writes if w["holderIdentity"] == holder]
    assert 9 <= len(renewals) <= 11  # one PUT per 6 s (15 s lease x 2/5), no extra writes
    assert all(w["leaseTransitions"] == 0 for w in store.writes)
    followers = [e for e in electors if not e.view().is_leader]
    assert all(f.view().leader == holder for f in followers)


async def test_leader_loses_api_steps_down_at_renew_deadline_and_is_replaced_after_expiry(clock, store, candidates):
    electors = [candidates(n, lease=3, renew=2, retry=0.5) for n in "abc"]
    await clock.advance(1)
    (old,) = [e for e in electors if e.view().is_leader]
    others = [e for e in electors if e is not old]
    old.lock.down = True
    cut = clock.now()
    await clock.advance(1.95, every=0.01, check=no_two_leaders(*electors))
    # the claim lasts at most renew deadline after the send time of the last good renewal
    await clock.advance(0.1)
    assert not old.view().is_leader
    assert old.view().leader == ""  # never its own name while not leading
    steps = []
    await clock.advance(5, every=0.01, check=lambda: steps.append((clock.now(), leaders(*electors))))
    first_new = next(t for t, names in steps if names)
    assert first_new - cut <= 3 + 0.5 + 0.1  # expiry (observed) + one watch-driven attempt
    assert first_new - cut >= 2.5  # and never before the lease could have expired
    new = [e for e in others if e.view().is_leader][0]
    assert new.view().term == 1
    assert store.spec["leaseTransitions"] == 1


async def test_hung_renewal_still_steps_down_on_time(clock, store, candidates):
    a = candidates("a", lease=3, renew=2, retry=0.5)
    await clock.advance(1)
    assert a.view().is_leader
    a.lock.hang = True
    seen = []
    await clock.advance(3, every=0.01, check=lambda: seen.append((clock.now(), a.view().is_leader)))
    last_true = max(t for t, leading in seen if leading)
    assert last_true <= 1000 + 1 + 2  # send time of last success (<= t=1.0) + renew deadline
    assert not a.view().is_leader


async def test_release_hands_over_at_once_through_the_watch(clock, store, candidates):
    electors = [candidates(n) for n in "abc"]
    await clock.advance(5)
    (old,) = [e for e in electors if e.view().is_leader]
    task = next(t for t in asyncio.all_tasks() if t.get_coro().cr_frame and t.get_coro().cr_frame.f_locals.get("self") is old)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert await old.release()
    assert store.spec["holderIdentity"] == "" and store.spec["leaseDurationSeconds"] == 1
    await clock.advance(0.001)
    assert len(leaders(*electors)) == 1 and not old.view().is_leader
    assert store.spec["leaseTransitions"] == 1


async def test_release_rechecks_the_fresh_holder(clock, store, candidates):
    a = candidates("a", run=False)
    store.put({"holderIdentity": "someone-else", "leaseDurationSeconds": 15, "leaseTransitions": 4})
    assert not await a.release()
    assert store.spec["holderIdentity"] == "someone-else"


async def test_foreign_client_go_holder_is_respected_until_observed_expiry(clock, store, candidates):
    stamp = "2020-01-01T00:00:00.000000Z"  # an old remote timestamp must not make it look expired
    store.put({"holderIdentity": "go-client", "leaseDurationSeconds": 15, "acquireTime": stamp,
               "renewTime": stamp, "leaseTransitions": 7})
    electors = [candidates(n) for n in "ab"]
    for _ in range(5):  # the Go client renews every 2 s
        await clock.advance(2)
        spec = dict(store.spec, renewTime=record.format_micro_time(clock.wall()))
        store.put(spec)
        assert leaders(*electors) == []
        assert all(e.view().leader == "go-client" and e.view().term == 7 for e in electors)
    start = clock.now()
    steps = []
    await clock.advance(20, every=0.05, check=lambda: steps.append((clock.now(), leaders(*electors))))
    took = next(t for t, names in steps if names) - start
    assert 15 <= took <= 15.2  # a full lease duration after the last change we saw
    assert store.spec["leaseTransitions"] == 8


async def test_fresh_candidate_waits_a_full_lease_duration_even_for_an_old_record(clock, store, candidates):
    store.put({"holderIdentity": "gone", "leaseDurationSeconds": 15, "leaseTransitions": 2})
    a = candidates("a")
    await clock.advance(14.9)
    assert not a.view().is_leader and a.view().leader == "gone"
    await clock.advance(0.5)
    assert a.view().is_leader and a.view().term == 3


async def test_deleted_lease_is_recreated(clock, store, candidates):
    a, b = candidates("a"), candidates("b")
    await clock.advance(1)
    holder = [e for e in (a, b) if e.view().is_leader][0]
    store.put(None)
    await clock.advance(3, every=0.05, check=no_two_leaders(a, b))
    assert len(leaders(a, b)) == 1
    assert store.spec["leaseTransitions"] in (0, 1)
    del holder


async def test_a_lease_deleted_under_a_leader_that_missed_it_waits_out_its_claim(clock, store, candidates):
    """Found in `make test`'s chaos run: the Lease deleted by hand while the leader's watch was being
    re-established (after an etcd restart). A follower that had seen the leader renew must not
    create a new Lease before that leader's lease, by the follower's own observation, has run out."""
    a, b = candidates("a", lease=3, renew=2, retry=0.5), candidates("b", lease=3, renew=2, retry=0.5)
    await clock.advance(1)
    (old,) = [e for e in (a, b) if e.view().is_leader]
    new = b if old is a else a
    old.lock.deaf = True  # it misses the deletion
    old.lock.hang = True  # and its next renewal hangs: it claims until its renew deadline
    deleted = clock.now()
    store.put(None)
    await clock.advance(6, every=0.01, check=no_two_leaders(a, b))
    assert leaders(a, b) == [new.config.identity]
    assert store.writes[-1]["holderIdentity"] == new.config.identity
    assert clock.now() - deleted > 2  # the new Lease came only after the old claim ended


async def test_a_lease_recreated_free_at_once_is_not_taken_before_the_old_claim_ran_out(clock, store, candidates):
    """The controller recreates a deleted election Lease at once, free (no holder): a follower that saw the
    leader renew must still wait out that leader's claim, which may not have seen the deletion."""
    a, b = candidates("a", lease=3, renew=2, retry=0.5), candidates("b", lease=3, renew=2, retry=0.5)
    await clock.advance(1)
    (old,) = [e for e in (a, b) if e.view().is_leader]
    new = b if old is a else a
    old.lock.deaf = True
    old.lock.hang = True
    deleted = clock.now()
    store.put(None)
    store.put({})  # the controller's new, free Lease
    await clock.advance(6, every=0.01, check=no_two_leaders(a, b))
    assert leaders(a, b) == [new.config.identity]
    assert clock.now() - deleted > 2
    taken = next(i for i, w in enumerate(store.writes) if w.get("holderIdentity") == new.config.identity)
    assert taken > 0


async def test_app_release_request_hands_over_and_cools_down(clock, store, candidates):
    a, b = candidates("a"), candidates("b")
    await clock.advance(1)
    (old,) = [e for e in (a, b) if e.view().is_leader]
    (other,) = [e for e in (a, b) if e is not old]
    old.request_release()
    await clock.advance(0.01)
    assert other.view().is_leader and not old.view().is_leader
    await clock.advance(14)
    assert other.view().is_leader  # the old leader does not take it back
    assert store.spec["holderIdentity"] == other.config.identity


async def test_unhealthy_app_gives_the_role_away(clock, store, candidates):
    health = {"a": True, "b": True}
    a = candidates("a", eligible=lambda: health["a"])
    await clock.advance(1)
    b = candidates("b", eligible=lambda: health["b"])
    await clock.advance(1)
    assert a.view().is_leader
    health["a"] = False
    await clock.advance(2.1)
    assert b.view().is_leader and not a.view().is_leader


async def test_recovered_api_lets_the_old_leader_start_a_new_term(clock, store, candidates):
    a = candidates("a", lease=3, renew=2, retry=0.5)
    await clock.advance(1)
    token = a.view().fencing_token
    store.set_down(True)
    await clock.advance(2.5)
    assert not a.view().is_leader
    store.set_down(False)
    await clock.advance(3)
    view = a.view()
    assert view.is_leader and view.term == 1 and view.fencing_token != token


async def test_listener_sees_changes(clock, store, candidates):
    a = candidates("a", run=False)
    seen = []
    a.add_listener(lambda view: seen.append(view.key()))
    task = asyncio.ensure_future(a.run())
    await clock.advance(1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert ("a", True, 0, str(store.rv)) in seen


async def test_resigning_leader_keeps_renewing_but_never_claims_or_starts_a_term(clock, store, candidates):
    a, b = candidates("a", lease=3, renew=2, retry=0.5), candidates("b", lease=3, renew=2, retry=0.5)
    await clock.advance(1)
    (old,) = [e for e in (a, b) if e.view().is_leader]
    (other,) = [e for e in (a, b) if e is not old]
    old.resign()
    assert not old.view().is_leader
    writes = len(store.writes)
    await clock.advance(5, every=0.05, check=lambda: leaders(a, b) == [])
    assert len(store.writes) > writes and store.spec["holderIdentity"] == old.config.identity  # still renewed
    old.lock.down = True  # its renewals fail: the claim runs out, and it must not start a new term
    await clock.advance(6)
    old.lock.down = False
    await clock.advance(3)
    assert other.view().is_leader and not old.view().is_leader


# ---------------------------------------------------------------- issue 12: expiry seen by followers,
# and how a term began (the Event's cause)

async def test_follower_reports_no_leader_once_the_observed_lease_expired_unseen(clock, store, candidates):
    a = candidates("a", lease=3, renew=2, retry=0.5)
    await clock.advance(1)
    b = candidates("b", lease=3, renew=2, retry=0.5, run=False)
    seen = []
    b.add_listener(lambda view: seen.append((clock.now(), view.leader)))
    task = asyncio.ensure_future(b.run())
    await clock.advance(1)
    assert b.view().leader == "a" and b.view().term == 0
    b.lock.down = True  # b can no longer see renewals (a still renews)
    store.set_down(False)
    cut = clock.now()
    await clock.advance(2.9, every=0.01)
    assert b.view().leader == "a"  # within a lease duration of the last change b saw
    await clock.advance(0.6, every=0.01)
    assert b.view().leader == "" and b.view().term is None and not b.view().is_leader
    told = [t for t, leader in seen if leader == ""]
    assert told and told[0] - cut <= 3.0 + 0.01  # listeners (SSE, long-poll) hear it at the expiry instant
    assert a.view().is_leader  # nothing changed for the leader itself
    b.lock.down = False
    await clock.advance(1.5)
    assert b.view().leader == "a"  # the next read shows the renewed Lease again
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_acquisitions_say_how_the_term_began(clock, store, candidates):
    a, b = candidates("a", lease=3, renew=2, retry=0.5, run=False), candidates("b", lease=3, renew=2, retry=0.5, run=False)
    got = []
    for elector in (a, b):
        elector.add_acquisition_listener(lambda acq, name=elector.config.identity: got.append(
            (name, acq.term, acq.cause, acq.previous, acq.lease_uid)))
    tasks = [asyncio.ensure_future(a.run())]
    await clock.advance(1)
    tasks.append(asyncio.ensure_future(b.run()))
    await clock.advance(1)
    assert got == [("a", 0, "created", "", store.uid)]
    a.request_release()
    await clock.advance(1)
    assert got[1] == ("b", 1, "released", "a", store.uid)
    b.lock.down = True  # b stops renewing: a takes over after the lease expired
    await clock.advance(6)
    assert got[2][:4] == ("a", 2, "expired", "b")
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_two_live_pods_with_one_name_never_both_lead(clock: FakeClock, store: LeaseStore, candidates):
    """A force-deleted StatefulSet pod still running beside its replacement: same name, other uid."""
    old = candidates("db-0", uid="uid-old")
    await clock.advance(1)
    new = candidates("db-0", uid="uid-new")
    await clock.advance(30, every=0.05, check=lambda: not (old.view().is_leader and new.view().is_leader))
    assert old.view().is_leader and not new.view().is_leader
    assert store.holder_uid == "uid-old"
    assert new.view().leader == ""  # its app must not read its own name while the other pod leads
    old_task_lock = old.lock
    old_task_lock.down = True  # the old pod is cut off: its claim runs out, then the new one takes over
    await clock.advance(30, every=0.05, check=lambda: not (old.view().is_leader and new.view().is_leader))
    assert new.view().is_leader and not old.view().is_leader and store.holder_uid == "uid-new"


async def test_without_a_uid_on_either_side_the_name_alone_decides(clock: FakeClock, store: LeaseStore, candidates):
    a = candidates("a", uid="u1")
    await clock.advance(1)
    store.holder_uid = ""  # written by a client-go peer or a 0.1 elector: no uid annotation
    await clock.advance(5, every=0.05)
    assert a.view().is_leader


async def test_a_forged_huge_lease_duration_is_capped(clock, store, candidates):
    """Anyone with update on the Lease (the app's token) could freeze the election with a huge duration."""
    store.put({"holderIdentity": "forger", "leaseDurationSeconds": 2**31 - 1, "leaseTransitions": 4})
    a = candidates("a")
    await clock.advance(4 * 15 - 0.5)  # the cap: LEASE_CAP_FACTOR x a's own 15 s
    assert not a.view().is_leader and a.view().leader == "forger"
    await clock.advance(1)
    assert a.view().is_leader and a.view().term == 5


async def _settled_with_gets(clock, candidates):
    """Three candidates after 20 s: (all, the followers, each follower's GETs so far)."""
    electors = [candidates(n) for n in "abc"]
    await clock.advance(20, every=0.05)
    followers = [e for e in electors if not e.view().is_leader]
    return electors, followers, [f.lock.gets for f in followers]


async def test_a_watch_the_server_ends_is_reopened_without_a_get(clock, store, candidates):
    """The API server ends every watch at its timeoutSeconds (240-300 s here): followers open the next one
    at once and make no GET for it (bench/elector_apiload.py saw 1-2 GETs per re-open before)."""
    electors, followers, before = await _settled_with_gets(clock, candidates)
    for _ in range(3):
        store.end_watches()
        await clock.advance(10, every=0.05, check=no_two_leaders(*electors))
    assert [f.lock.gets for f in followers] == before
    holder = leaders(*electors)[0]
    assert all(f.view().leader == holder for f in followers)  # still following through the new watches


async def test_a_watch_that_ends_at_once_falls_back_to_polling(clock, store, candidates):
    """A stream that ends as soon as it opens (a proxy cutting it) is a watch that is down: the follower
    polls every retry period rather than spinning on re-opens."""
    _, followers, before = await _settled_with_gets(clock, candidates)
    for _ in range(20):
        store.end_watches()
        await clock.advance(0.5, every=0.05)
    assert all(after > b for after, b in zip([f.lock.gets for f in followers], before))
