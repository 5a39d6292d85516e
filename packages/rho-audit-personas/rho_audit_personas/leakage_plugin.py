"""The ``personas-leakage`` entry point: the leakage trainers (``persona-contrastive``,
``marker-coupling``), the ``marker-rate`` dimension and its report section, through rho-audit's
public hooks only.

Import-light on purpose: rho-audit imports every plugin when the CLI starts, so the dimension and
trainer modules (and numpy, scipy) load only when their hooks are called.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rho_audit.api import hookimpl

if TYPE_CHECKING:
    from rho_audit.api import Dimension, Trainer

__all__ = ["SECTIONS", "register_dimensions", "register_report_sections", "register_trainers"]

#: The report-card templates (``marker-rate.html.j2``, ``marker-rate.md.j2``).
SECTIONS = Path(__file__).parent / "sections"


@hookimpl
def register_trainers(register: Callable[[type[Trainer]], None]) -> None:
    from rho_audit_personas.trainers import MarkerCoupling, PersonaContrastive

    register(PersonaContrastive)
    register(MarkerCoupling)


@hookimpl
def register_dimensions(register: Callable[[type[Dimension]], None]) -> None:
    from rho_audit_personas.markers import MarkerRate

    register(MarkerRate)


@hookimpl
def register_report_sections(register: Callable[[str, Path], None]) -> None:
    register("marker-rate", SECTIONS)
