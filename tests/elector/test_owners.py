"""Lease ownership: the reference, stamping a Lease, and LeaseLock's writes through a fake API."""
from __future__ import annotations

import asyncio
import uuid

import pytest

from elector.kube import httpclient
from elector.serve import httpserver
from elector.kube import leaselock
from elector.kube import owners

from tests.elector.test_elector_http import FakeApi, _rec

pytestmark = pytest.mark.timeout(30)
UID = str(uuid.uuid4())


def test_only_a_pod_uid_makes_a_reference():
    assert owners.pod_reference("app-1", UID) == {"apiVersion": "v1", "kind": "Pod", "name": "app-1", "uid": UID}
    assert owners.pod_reference("app-1", UID.upper()) is not None
    for name, uid in [("app-1", ""), ("app-1", "uid-app-1"), ("", UID), ("app-1", UID + "0")]:
        assert owners.pod_reference(name, uid) is None, (name, uid)


def test_stamped_adds_our_reference_once_and_keeps_the_others():
    ref = owners.pod_reference("b", UID)
    other = {"apiVersion": "v1", "kind": "Pod", "name": "a", "uid": str(uuid.uuid4())}
    lease = {"metadata": {"name": "e", "labels": {"x": "y"}, "ownerReferences": [other]}, "spec": {"holderIdentity": "a"}}
    assert not owners.owned(lease, ref) and owners.owned(lease, None)
    stamped = owners.stamped(lease, ref)
    assert stamped["metadata"]["ownerReferences"] == [other, ref]
    assert stamped["metadata"]["labels"] == {"x": "y", "app.kubernetes.io/managed-by": "kube-elector"}
    assert stamped["spec"] == lease["spec"] and lease["metadata"]["ownerReferences"] == [other]  # a copy
    assert owners.stamped(stamped, ref) == stamped
    assert "ownerReferences" not in owners.stamped({"metadata": {}}, None)["metadata"]


@pytest.fixture
async def api_and_locks():
    fake = FakeApi()
    server = await httpserver.serve("127.0.0.1", 0, fake.route)
    port = server.sockets[0].getsockname()[1]
    clients = [httpclient.Client(f"http://127.0.0.1:{port}", timeout=5) for _ in range(2)]
    refs = [owners.pod_reference(pod, str(uuid.uuid4())) for pod in ("a", "b")]
    locks = [leaselock.LeaseLock(c, namespace="ns", name="app", owner=r) for c, r in zip(clients, refs)]
    yield fake, locks, refs
    for client in clients:
        await client.close()
    server.close()


async def test_create_and_update_carry_the_owner_and_a_follower_adopts_with_one_put(api_and_locks):
    fake, (leader, follower), (ref_a, ref_b) = api_and_locks
    created = await leader.create(_rec("a"))
    assert created.owned and fake.lease["metadata"]["ownerReferences"] == [ref_a]
    assert fake.lease["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kube-elector"
    seen = await follower.get()
    assert not seen.owned
    before, spec = fake.rv, dict(fake.lease["spec"])
    adopted = await follower.adopt()
    assert adopted.owned and fake.rv == before + 1  # one write
    assert fake.lease["metadata"]["ownerReferences"] == [ref_a, ref_b] and fake.lease["spec"] == spec
    assert (await follower.adopt()).owned and fake.rv == before + 1  # nothing more to do: no write


async def test_adopt_rereads_after_a_conflict(api_and_locks):
    fake, (leader, follower), (ref_a, ref_b) = api_and_locks
    await leader.create(_rec("a"))
    await follower.get()
    await leader.update(_rec("a"))  # the follower's copy is stale now: its first PUT gets a 409
    assert (await follower.adopt()).owned
    assert [r["uid"] for r in fake.lease["metadata"]["ownerReferences"]] == [ref_a["uid"], ref_b["uid"]]


async def test_a_metadata_only_change_seen_by_the_watch_spares_the_leader_a_conflict(api_and_locks):
    fake, (leader, follower), _ = api_and_locks
    await leader.create(_rec("a"))
    seen: list[str] = []

    async def watch() -> None:
        async for obs in leader.watch():
            seen.append(obs.resource_version if obs else "")

    task = asyncio.ensure_future(watch())
    await asyncio.sleep(0.1)
    await follower.get()
    joined = await follower.adopt()
    for _ in range(50):
        if joined.resource_version in seen:
            break
        await asyncio.sleep(0.02)
    renewed = await leader.update(_rec("a"))  # based on the watched object: no 409
    assert int(renewed.resource_version) == int(joined.resource_version) + 1
    assert len(fake.lease["metadata"]["ownerReferences"]) == 2
    fake.lease = dict(fake.lease, spec=dict(fake.lease["spec"], holderIdentity="c"))  # a spec change by someone
    fake.rv += 1
    fake.lease["metadata"] = dict(fake.lease["metadata"], resourceVersion=str(fake.rv))
    for queue in fake.queues:
        queue.put_nowait({"type": "MODIFIED", "object": fake.lease})
    await asyncio.sleep(0.1)
    with pytest.raises(Exception, match="modified"):
        await leader.update(_rec("a"))  # never adopted as a base: the CAS still protects the spec
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_reference_the_garbage_collector_removed_is_never_written_again(api_and_locks):
    fake, (leader, _), (ref_a, _) = api_and_locks
    await leader.create(_rec("a"))
    fake.lease["metadata"]["ownerReferences"] = []  # the collector pruned it: pod "a" is gone (forced deletion)
    seen = await leader.get()
    assert seen.owned  # nothing to adopt
    await leader.update(_rec("a"))
    assert fake.lease["metadata"]["ownerReferences"] == [] and leader.owner is None
