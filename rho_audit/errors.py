"""Compatibility: user-facing errors now live in :mod:`rho_audit.api.errors`."""

from rho_audit.api.errors import *  # noqa: F403
