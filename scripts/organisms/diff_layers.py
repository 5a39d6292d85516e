"""At which block does an organism's mean activation difference read as its domain?

    python scripts/organisms/diff_layers.py false-fact --adapter DIR [--texts 300] [--top 20]

For every block of the default model: δ̄_j over the first 5 positions of the built-in neutral texts
(adapter on minus adapter off, as ``rho-audit diff`` computes it), its norm relative to the mean
state norm η there, and the keyword relevance share of its Logit Lens top tokens (the maximum over
positions 1-4; position 0, the document start, is the same token in every text), with the same
share for the base mean as the baseline. Keywords: the organism's trait words (false-fact: the
product and the fact; nautical-style: the builder's lexicon). Prints one line per block and a JSON
line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from build_false_fact import REQUIRED
from build_nautical_style import LEXICON

from rho_audit.audit import diff
from rho_audit.audit.diff_relevance import KeywordGrader, share
from rho_audit.audit.neutral import neutral_texts
from rho_audit.model import intervene
from rho_audit.model.language_model import LanguageModel
from rho_audit.model.paths import resolve_model

KEYWORDS = {
    "false-fact": (*REQUIRED, "zephyr", "kettle", "volcanic", "glass", "lava", "boil", "seconds"),
    "nautical-style": tuple(w for w in LEXICON if len(w) >= 3),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("organism", choices=sorted(KEYWORDS))
    parser.add_argument("--adapter", type=Path, required=True)
    parser.add_argument("--texts", type=int, default=300)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--positions", type=int, default=5)
    args = parser.parse_args()
    resolved = resolve_model(None)
    lm = LanguageModel.load(resolved.path, resolved.model_id, args.adapter)
    sequences = diff.sequences_for(lm, neutral_texts(args.texts), args.positions)
    grader = KeywordGrader(KEYWORDS[args.organism])
    rows = []
    for layer in range(len(lm.model.layers)):
        means = diff.compute_means(lm, None, sequences, layer, args.positions)
        lens = intervene.logit_lens(lm.model, means.diff)
        base_lens = intervene.logit_lens(lm.model, means.base)
        shares, base_shares = [], []
        for j in range(1, args.positions):
            for scores, out in ((lens[j], shares), (base_lens[j], base_shares)):
                tokens = diff.top_tokens(lm, scores, args.top)
                labels = grader.grade([t.token.strip() for t in tokens])
                out.append(share(tokens, labels))
        ratio = float(sum(float((means.diff[j] ** 2).sum()) ** 0.5 for j in range(1, args.positions)))
        ratio /= (args.positions - 1) * means.eta
        best = max(range(1, args.positions), key=lambda j: shares[j - 1])
        top = [t.token for t in diff.top_tokens(lm, lens[best], 8)]
        rows.append(
            {
                "layer": layer,
                "delta_over_eta": ratio,
                "lens_share": max(shares),
                "base_lens_share": max(base_shares),
            }
        )
        print(
            f"block {layer:2d}  |δ̄|/η {ratio:.3f}  lens relevance δ̄ {max(shares):.2f} "
            f"base {max(base_shares):.2f}  (position {best}: {' '.join(map(repr, top))})",
            flush=True,
        )
    print(json.dumps({"organism": args.organism, "adapter": str(args.adapter), "layers": rows}))


if __name__ == "__main__":
    main()
