"""The ``personas`` entry point: registers the persona library, the package's probe sets and the
capability dimensions through rho-audit's public hooks.

Import-light on purpose: rho-audit imports every plugin when the CLI starts (the modules below
import only ``rho_audit.api``; NumPy and SciPy load inside the functions that use them).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rho_audit.api import Dimension, Persona, hookimpl
from rho_audit_personas.capability import PersonaCapability, PersonaCapabilityPanel, PersonaCapabilityText
from rho_audit_personas.data import NEUTRAL_QUESTIONS, PROBES, SCIENCE_MC
from rho_audit_personas.library import PERSONAS

__all__ = ["register_dimensions", "register_personas", "register_probe_sets"]


@hookimpl
def register_personas(register: Callable[[Persona], None]) -> None:
    for persona in PERSONAS:
        register(persona)


@hookimpl
def register_probe_sets(register: Callable[[str, Path], None]) -> None:
    for name in (SCIENCE_MC, NEUTRAL_QUESTIONS):
        register(name, PROBES / name)


@hookimpl
def register_dimensions(register: Callable[[type[Dimension]], None]) -> None:
    register(PersonaCapability)
    register(PersonaCapabilityPanel)
    register(PersonaCapabilityText)
