"""The election fixtures (ServiceAccount with the shipped RBAC) shared with the chaos run."""

from tests.election.conftest import election_rbac, sa_kubeconfig  # noqa: F401
