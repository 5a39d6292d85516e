"""rho-audit's built-in probe library, installed as the ``rho_audit_probes`` package.

Every sub-folder with a ``card.yaml`` is a probe set named after the folder. It is registered
through the ``register_probe_sets`` hook, the same way a third-party package ships probes.
"""

from pathlib import Path

from rho_audit.api import hookimpl

PROBE_ROOT = Path(__file__).parent


@hookimpl
def register_probe_sets(register):
    for card in sorted(PROBE_ROOT.glob("*/card.yaml")):
        register(card.parent.name, card.parent)
