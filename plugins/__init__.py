"""rho-audit's built-in plugins, installed as the ``rho_audit_plugins`` package.

Each module is registered through the ``rho_audit`` entry-point group in pyproject.toml, exactly
as a third-party package registers its own, so any of them can be disabled with
``RHO_AUDIT_DISABLE_PLUGINS``.
"""
