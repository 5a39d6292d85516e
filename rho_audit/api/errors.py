"""User-facing errors.

Anything a user can fix (bad probe file, unknown plugin, missing model) is raised as a
:class:`RhoAuditError`. The CLI prints its message as one paragraph and exits with code 2;
a traceback is shown only with ``--debug``.
"""

from __future__ import annotations

__all__ = ["JudgeError", "ModelError", "PluginError", "ProbeFileError", "RhoAuditError", "Terminated"]


class RhoAuditError(Exception):
    """An error the user can fix. ``str(err)`` must name the cause and the fix."""

    exit_code = 2


class ProbeFileError(RhoAuditError):
    """A probe file failed validation; the message names file, line and field."""


class PluginError(RhoAuditError):
    """Unknown, broken or clashing plugin."""


class ModelError(RhoAuditError):
    """A model could not be found, converted or loaded."""


class JudgeError(RhoAuditError):
    """A judge cannot work at all (no key, unknown option, rejected credentials)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGHUP) turned into an exception by the CLI, so it unwinds like Ctrl-C: the
    run is marked interrupted and finished work stays saved. Exit code 128 + the signal number."""

    def __init__(self, signum: int) -> None:
        import signal

        self.signum = signum
        super().__init__(f"terminated by {signal.Signals(signum).name}")
