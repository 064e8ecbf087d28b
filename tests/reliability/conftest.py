"""No reliability test may hang: each gets a wall-clock limit (SIGALRM in the test's own
process), and one that runs past it fails naming the limit instead of blocking the suite.
Subprocesses the tests start have their own ``timeout=`` arguments."""

from __future__ import annotations

import os
import signal

import pytest

LIMIT_S = int(os.environ.get("MENTOR_TEST_LIMIT_S", "600"))  # the slowest test: under a minute


class Hang(Exception):
    """A reliability test ran past LIMIT_S."""


@pytest.fixture(autouse=True)
def _no_hang():
    def fire(signum, frame):
        raise Hang(f"test ran past {LIMIT_S} s: something blocked (a FIFO, a lock, a loop)")
    previous = signal.signal(signal.SIGALRM, fire)
    signal.alarm(LIMIT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
