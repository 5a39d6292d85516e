"""Helpers for tests that drive rho-audit in a child process."""

from __future__ import annotations

import signal


def default_sigint() -> None:
    """``preexec_fn`` for a child that a test interrupts with SIGINT: a shell's background job
    (``cmd &`` without job control, as CI launchers often run the suite) ignores SIGINT, the
    child inherits that, and Python then never raises KeyboardInterrupt in it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
