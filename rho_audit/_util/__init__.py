"""Small helpers shared across rho-audit, one per job. They import nothing from rho_audit, so any
module may use them without an import cycle."""
