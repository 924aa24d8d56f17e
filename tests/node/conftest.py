"""The node tests. Their fixtures (`node_cluster`, `node_api`, `node_namespace`, `restricted_namespace`) are
in tests/conftest.py, shared with tests/security.

Tests that use `node_cluster` are marked `node` (tests/conftest.py); run them alone with
`make test-node`. They need the images (`make images`) and fail, not skip, without them.
"""

from __future__ import annotations

from pathlib import Path

from localplane import cluster

REPO = Path(__file__).resolve().parents[2]
APP = cluster.OVERLAYS / "leader-app"
