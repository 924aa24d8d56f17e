"""Issue 20's attack on the real node, as reported: an ordinary pod POSTs a hand-written AdmissionReview to
the webhook Service's ClusterIP, naming another namespace's ServiceAccount. Nothing in the cluster changes.
(The same through the API server with the webhook as a process: tests/security/test_forged_review.py.)"""
from __future__ import annotations

import contextlib
import json
import time
import uuid

import httpx

from localplane import cluster as cluster_
from tests.security.test_forged_review import LISTS, THIEF, VICTIM, allowed, forged_review, present
from tests.node import apps

SEND = """
import json, ssl, sys, urllib.request
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
req = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), headers={"Content-Type": "application/json"})
with urllib.request.urlopen(req, context=ctx, timeout=10) as reply:
    print(json.dumps({"status": reply.status, "body": json.loads(reply.read())}))
"""


def test_a_forged_review_from_any_pod_changes_nothing(node_cluster, node_api, node_namespace):
    with contextlib.suppress(httpx.HTTPError):
        node_api.delete(f"/api/v1/namespaces/{VICTIM}")
    deadline = time.monotonic() + 60
    while node_api.post("/api/v1/namespaces", json={"metadata": {"name": VICTIM}}).status_code == 409:
        assert time.monotonic() < deadline, "an earlier victim namespace is still going"
        time.sleep(0.5)
    try:
        node_api.post(f"/api/v1/namespaces/{VICTIM}/serviceaccounts",
                      json={"metadata": {"name": THIEF}}).raise_for_status()
        attacker = apps.bare_pod("attacker", command=apps.SLEEP)
        del attacker["metadata"]["annotations"]["elector.dev/inject"]  # an ordinary pod: no elector
        node_api.post(f"/api/v1/namespaces/{node_namespace}/pods", json=attacker).raise_for_status()
        apps.wait_pod_ready(node_api, node_namespace, "attacker")
        service = node_api.get(f"/api/v1/namespaces/{cluster_.NAMESPACE}/services/kube-elector-webhook").json()
        url = f"https://{service['spec']['clusterIP']}:443/mutate"
        assert present(node_api) == {}
        uid = f"forged-{uuid.uuid4()}"
        sent = node_cluster.kubectl("exec", "-n", node_namespace, "attacker", "--", "python3", "-c", SEND, url,
                                    json.dumps(forged_review(uid)))
        answer = json.loads(sent.stdout)
        assert answer["status"] == 200 and answer["body"]["response"]["uid"] == uid  # the webhook answered
        settle = time.monotonic() + 3
        while time.monotonic() < settle:
            assert present(node_api) == {}, LISTS
            time.sleep(0.25)
        for verb, resource, group in (("patch", "pods", ""), ("list", "pods", ""),
                                      ("create", "leases", "coordination.k8s.io"),
                                      ("update", "leases", "coordination.k8s.io")):
            assert not allowed(node_api, verb, resource, group=group), (verb, resource)
    finally:
        node_api.delete(f"/api/v1/namespaces/{VICTIM}")
