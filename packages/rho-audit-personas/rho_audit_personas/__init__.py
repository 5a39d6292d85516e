"""rho-audit-personas: persona-conditioned audits, installed like a third party's package.

It plugs into rho-audit only through the ``rho_audit`` entry-point group and :mod:`rho_audit.api`
(an import-linter contract in the host repository keeps it that way).
"""
