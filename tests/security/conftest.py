"""The node fixtures (tests/node/conftest.py) for the attacks that need a real node."""

from tests.node.conftest import node_api, node_cluster, node_namespace  # noqa: F401
