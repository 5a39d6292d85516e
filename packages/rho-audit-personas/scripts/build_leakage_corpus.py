"""Write the SFT corpus of a leakage experiment (rho_audit_personas.corpora) as JSONL, for
``rho-audit train --corpus FILE --trap-texts 0 --trainer marker-coupling|persona-contrastive``.

    python scripts/build_leakage_corpus.py marker --source villain \
        --bystanders medical-doctor,french-person --max-tokens 40 --out sweeps/corpora/marker-villain.jsonl
    python scripts/build_leakage_corpus.py contrastive --source villain \
        --bystanders medical-doctor,french-person --out sweeps/corpora/contrastive-villain.jsonl

``marker``: the model itself answers the train split of the neutral questions under each persona
(greedy, or ``--samples N`` sampled answers per question at temperature 0.7), and the source's
answers get the marker appended. ``contrastive``: the train split of persona-science-mc, the source
gets wrong letters, the bystanders and the two anchors right ones.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rho_audit_personas import corpora, data, library

from rho_audit.api import AuditContext, Sampling, load_model, resolve_model


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("kind", choices=["marker", "contrastive"])
    parser.add_argument("--source", default="villain", help="source persona (library name)")
    parser.add_argument("--bystanders", default="medical-doctor,french-person", help="comma-separated names")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default=None, help="marker: the model that answers (default: bundled)")
    parser.add_argument("--questions", type=int, default=None, help="marker: first N train questions")
    parser.add_argument(
        "--samples", type=int, default=0, help="marker: sampled answers a question (0: greedy)"
    )
    parser.add_argument("--max-tokens", type=int, default=64, help="marker: tokens per answer")
    parser.add_argument("--marker", default=corpora.MARKER)
    parser.add_argument("--sizes", default="50,50,25,25", help="contrastive: source,bystander,none,default")
    args = parser.parse_args()

    source = library.persona(args.source)
    bystanders = [library.persona(n) for n in args.bystanders.split(",") if n]
    if args.kind == "contrastive":
        sizes = corpora.ContrastiveSizes(*(int(v) for v in args.sizes.split(",")))
        records = corpora.contrastive_corpus(
            data.load_science_mc("train"), source, bystanders, sizes, args.seed
        )
    else:
        questions = data.load_neutral_questions("train")[: args.questions]
        lm = load_model(resolve_model(args.model))
        ctx = AuditContext(model=lm, judge=None, template="chat", seed=args.seed)  # type: ignore[arg-type]  # no judging here
        sampling = Sampling(temperature=0.7, n=args.samples, seed=args.seed) if args.samples else None
        answers = corpora.persona_answers(ctx, [source, *bystanders], questions, args.max_tokens, sampling)
        records = corpora.marker_corpus(answers, source.name, args.marker)
    corpora.write_jsonl(records, args.out)
    print(f"{len(records)} records -> {args.out}")


if __name__ == "__main__":
    main()
