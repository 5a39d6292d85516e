"""Compatibility: the plugin API now lives in :mod:`rho_audit.api`.

``from rho_audit.hookspecs import PairDimension, hookimpl`` keeps working for packages written
against the earlier documented API; new code imports from :mod:`rho_audit.api`.
"""

from rho_audit.api.hooks import *  # noqa: F403
