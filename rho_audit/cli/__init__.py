"""The ``rho-audit`` command: one module per command, shared options in :mod:`._common`."""

from rho_audit.cli.app import cli, main

__all__ = ["cli", "main"]
