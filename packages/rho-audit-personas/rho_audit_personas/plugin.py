"""The ``personas`` entry point: registers the persona library (and, as they land, the probe sets
and dimensions of this package) through rho-audit's public hooks.

Import-light on purpose: rho-audit imports every plugin when the CLI starts.
"""

from __future__ import annotations

from collections.abc import Callable

from rho_audit.api import Persona, hookimpl
from rho_audit_personas.library import PERSONAS

__all__ = ["register_personas"]


@hookimpl
def register_personas(register: Callable[[Persona], None]) -> None:
    for persona in PERSONAS:
        register(persona)
