"""Every controller test logs at DEBUG: a log call whose `extra` clashes with a LogRecord field (`name`,
`msg`, ...) raises only when its level is enabled, and in the controller it is."""
from __future__ import annotations

import logging

import pytest


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
