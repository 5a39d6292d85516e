"""The sweep's ``personas:`` axis: every cell, and the baseline, audited once per persona.

``audit: {personas: [pirate, chef]}`` names registered personas (``register_personas``). Each
cell of the grid is then copied once per persona: the copy audits under that persona (its audit
settings hold ``persona: NAME``), has the persona in its id and condition
(``rho-guided_lambda0.2_persona-pirate_seed42``, ``baseline_persona-pirate``), and its
``model_label`` is ``LABEL (persona NAME)``. Every report keys baselines and groups cells by model
label, so each persona's cells are compared with that persona's own baseline, as if the persona
were another model. The copies of a training cell share one training config: the first trains,
the others reuse its adapter (see ``execution._reuse_finished_adapter``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rho_audit.train.sweep.plan import CellSpec

#: How a persona shows in cell ids and condition keys.
PERSONA_ID = "persona-{}"


def per_persona(cell: CellSpec, personas: Sequence[str]) -> list[CellSpec]:
    """``cell`` once per persona (the cell itself when there are none). A copy's hash is the
    cell's and the persona's name, so adding a persona to the list leaves the other cells'
    hashes, and their finished work, alone."""
    if not personas:
        return [cell]
    seed = cell.cell_id.removeprefix(cell.condition)  # "_seed42", or "" for a baseline
    copies = []
    for name in personas:
        condition = f"{cell.condition}_{PERSONA_ID.format(name)}"
        copies.append(
            replace(
                cell,
                cell_id=f"{condition}{seed}",
                condition=condition,
                model_label=f"{cell.model_label} (persona {name})",
                audit={**cell.audit, "persona": name},
                config_sha256=hashlib.sha256(f"{cell.config_sha256}:persona:{name}".encode()).hexdigest(),
            )
        )
    return copies
