"""The election fixtures shared with the chaos run: the kube-elector controller (it makes the election's
Lease and Role, and makes the Lease again when a fault deletes it), candidate pods, ServiceAccount `app`."""

from tests.integration.elector.conftest import controller, pod_uids, pods, sa_kubeconfig  # noqa: F401
