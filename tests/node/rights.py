"""Asking the API server what a token may do: SelfSubjectAccessReview with the token a container holds."""
from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from localplane import cluster as cluster_

TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def container_token(the_cluster: cluster_.Cluster, namespace: str, pod: str, container: str) -> str:
    """The token file as the kubelet mounted it in that container (read from inside it)."""
    read = f"print(open('{TOKEN}').read())"
    return the_cluster.kubectl("exec", "-n", namespace, pod, "-c", container, "--",
                               "python3", "-c", read).stdout.strip()


@contextmanager
def as_token(the_cluster: cluster_.Cluster, token: str) -> Iterator[httpx.Client]:
    plane = the_cluster.plane
    context = ssl.create_default_context(cadata=plane.ca_pem.decode())
    with httpx.Client(base_url=plane.server, verify=context, trust_env=False, timeout=10,
                      headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}) as client:
        yield client


def can(client: httpx.Client, verb: str, resource: str, namespace: str, *, group: str = "",
        name: str = "") -> bool:
    attrs = {"verb": verb, "resource": resource, "group": group, "namespace": namespace}
    if name:
        attrs["name"] = name
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": attrs}}
    reply = client.post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", json=review)
    reply.raise_for_status()
    return bool(reply.json()["status"]["allowed"])


def whoami(client: httpx.Client) -> dict:
    reply = client.post("/apis/authentication.k8s.io/v1/selfsubjectreviews",
                        json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    reply.raise_for_status()
    return reply.json()["status"]["userInfo"]
