"""Probe sets the user imported (``rho-audit probes import``), registered like a plugin's.

They live in the user's data directory, one folder per set, so they are usable by name from
any working directory. ``RHO_AUDIT_DATA_DIR`` moves that directory (tests, shared clusters).
"""

from __future__ import annotations

import os
from pathlib import Path

from rho_audit.api.hooks import hookimpl

PLUGIN_NAME = "user-probes"


def user_probe_root() -> Path:
    """Where imported probe sets are written and found."""
    override = os.environ.get("RHO_AUDIT_DATA_DIR")
    if override:
        return Path(override).expanduser() / "probes"
    import platformdirs

    return Path(platformdirs.user_data_dir("rho-audit")) / "probes"


@hookimpl
def register_probe_sets(register):
    root = user_probe_root()
    if root.is_dir():
        for card in sorted(root.glob("*/card.yaml")):
            register(card.parent.name, card.parent)
