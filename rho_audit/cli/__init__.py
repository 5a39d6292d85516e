"""The ``rho-audit`` command: one module per command, shared options in :mod:`._common`."""

from rho_audit.cli.main import cli, main

__all__ = ["cli", "main"]
