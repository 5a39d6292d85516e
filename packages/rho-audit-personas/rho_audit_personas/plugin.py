"""The ``personas`` entry point: registers the persona library, the package's probe sets, the
capability dimensions and their report sections through rho-audit's public hooks.

Import-light on purpose: rho-audit imports every plugin when the CLI starts (the modules below
import only ``rho_audit.api``; NumPy and SciPy load inside the functions that use them).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rho_audit.api import Dimension, Persona, hookimpl
from rho_audit_personas.capability import PersonaCapability, PersonaCapabilityPanel, PersonaCapabilityText
from rho_audit_personas.data import NEUTRAL_QUESTIONS, PROBES, SCIENCE_MC
from rho_audit_personas.leakage_plugin import SECTIONS
from rho_audit_personas.library import PERSONAS

__all__ = ["register_dimensions", "register_personas", "register_probe_sets", "register_report_sections"]


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


@hookimpl
def register_report_sections(register: Callable[[str, Path], None]) -> None:
    # Per persona: accuracy with its CI and centroid cosine, and accuracy against cosine with the
    # source marked (the panel and text variants include the same template).
    for cls in (PersonaCapability, PersonaCapabilityPanel, PersonaCapabilityText):
        register(cls.name, SECTIONS)
