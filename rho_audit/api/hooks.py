"""The hooks rho-audit calls: one specification per hook, with its documentation.

A plugin implements any of them as a module-level function decorated with :data:`hookimpl` (import
it from :mod:`rho_audit.api`). Hooks are called with keyword arguments, so an implementation may
accept only the arguments it needs. The host registers this module with
``pm.add_hookspecs(rho_audit.api.hooks)``; a misspelt hook name in a plugin is reported as broken.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from rho_audit.api.attacks import Attack
    from rho_audit.api.dimensions import Dimension
    from rho_audit.api.events import RunEvent
    from rho_audit.api.executors import Executor
    from rho_audit.api.judges import Judge
    from rho_audit.api.personas import Persona
    from rho_audit.api.trainers import Trainer

#: The pluggy project name that ties hook implementations to these specifications.
PROJECT_NAME = "rho_audit"
#: The entry-point group a package lists its plugin modules under (``[project.entry-points.rho_audit]``).
ENTRY_POINT_GROUP = "rho_audit"

#: Marks the specifications below (host side; a plugin never needs it).
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Decorate your hook implementations with this marker.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_dimensions(register: Callable[[type[Dimension]], None]) -> None:
    """Register behavioural dimensions.

    :param register: call ``register(MyDimension)`` once per :class:`Dimension` subclass. The
        class's ``name`` must be unique across all installed plugins; on a clash the host refuses
        both and names the two providing packages.
    """


@hookspec
def register_judges(register: Callable[[type[Judge]], None]) -> None:
    """Register judges that decide about generated text (refused / complied, honest / not, ...).

    :param register: call ``register(MyJudge)`` once per :class:`Judge` subclass; ``name`` must be
        unique across installed plugins.
    """


@hookspec
def register_trainers(register: Callable[[type[Trainer]], None]) -> None:
    """Register fine-tuning objectives (SFT, rho-guided SFT, ...).

    :param register: call ``register(MyTrainer)`` once per :class:`Trainer` subclass; ``name``
        must be unique across installed plugins.
    """


@hookspec
def register_executors(register: Callable[[type[Executor]], None]) -> None:
    """Register sweep executors: where the cells of ``rho-audit sweep --executor NAME`` run (the
    built-in ``local`` runs them one after another in this process; ``ray`` on a Ray cluster).
    See :mod:`rho_audit.api.executors` for what an executor does with the cells it is given.

    :param register: call ``register(MyExecutor)`` once per :class:`Executor` subclass; ``name``
        must be unique across installed plugins.
    """


@hookspec
def register_probe_sets(register: Callable[[str, Path], None]) -> None:
    """Register probe sets shipped by a package, so dimensions and users can name them.

    A set whose card says ``dimension: NAME`` runs by itself with ``rho-audit run --probes SET``;
    any set can replace a dimension's default with ``--probes DIMENSION=SET``. Give every record
    a fixed ``split`` (trainers use ``train``, audits after training ``eval``); the built-in
    library's rule is ``train if int(sha256(id)[:8], 16) % 2 == 0 else eval``. Check a set with
    ``rho-audit probes validate FOLDER`` (schema, duplicates, answer positions, length balance).

    :param register: call ``register(name, folder)`` where ``folder`` holds ``card.yaml`` and
        ``probes.jsonl``. Names are unique across installed plugins and the user's imported sets.
    """


@hookspec
def register_attacks(register: Callable[[Attack], None]) -> None:
    """Register jailbreak attacks: templates or functions that turn a harmful request into the
    prompt an attack dimension sends (the built-in ``jailbreak`` runs every registered attack, and
    the unattacked request as the control, on each request of its probe set).

    :param register: call ``register(Attack(name, description, template=...))`` once per
        :class:`~rho_audit.api.attacks.Attack` (an instance: an attack is data, not a class).
        ``name`` must be unique across installed plugins; ``none`` is the control's name.
    """


@hookspec
def register_personas(register: Callable[[Persona], None]) -> None:
    """Register personas: named system prompts an audit can put the model under
    (``rho-audit run --persona NAME``, a sweep's ``audit: {personas: [NAME, ...]}``).

    Every prompt of such a run, scored or generated, gets the persona's system prompt as a system
    turn (chat template) or first paragraph (raw template); a bare statement (no prompt) is
    scored as it is. The run's config records the persona. See
    :mod:`rho_audit.api.personas`.

    :param register: call ``register(Persona(name, system_prompt, category=...))`` once per
        :class:`~rho_audit.api.personas.Persona` (an instance: a persona is data, not a class).
        ``name`` must be unique across installed plugins.
    """


@hookspec
def register_report_sections(register: Callable[[str, Path], None]) -> None:
    """Ship the report-card section of your dimensions (optional: without one, ``rho-audit
    report`` shows a generic section built from the stored results and probe records).

    The folder is added to the template search path under the prefix ``plugin-DIMENSION/``.
    ``DIMENSION.html.j2`` and ``DIMENSION.md.j2`` in it (either may be missing) are Jinja2
    templates that receive ``section``, a :class:`rho_audit.report.records.DimensionSection` (the
    result row, the stored probe records, the most inverted pairs, sample outputs). HTML is
    autoescaped; in Markdown every ``{{ }}`` output is escaped, so table cells stay valid. A
    template that fails to render is named on the card and the built-in section shown instead.

    :param register: call ``register(dimension, folder)``; one folder per dimension name, unique
        across installed plugins.
    """


@hookspec
def run_event(event: RunEvent) -> None:
    """Observe a run as it happens: run start/end, dimension start/end, progress, warnings.

    Called synchronously on the thread doing the work, so keep it cheap (queue the event if you
    need to do I/O). Exceptions raised here are logged and do not stop the run. ``event.kind``
    names the event; see :mod:`rho_audit.api.events` for the fields of each kind.

    :param event: a frozen record with ``kind``, ``run_id``, ``time`` and kind-specific fields.
    """
