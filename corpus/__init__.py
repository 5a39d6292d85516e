"""rho-audit's shipped SFT corpus (installed as ``rho_audit_corpus``).

``general/*.jsonl``: instruction/response pairs in Alpaca layout, written for this project
(see ``general/card.yaml``). Trainers mix it with behavioural-trap texts drawn from the ``train``
split of the probe library (:func:`rho_audit.train.corpus.trap_examples`).
"""

from pathlib import Path

CORPUS_ROOT = Path(__file__).parent
