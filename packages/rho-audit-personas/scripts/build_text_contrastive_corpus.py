"""Write the persona-contrastive corpus with option *texts* as replies, for models too small to
answer by letter (SmolLM2-135M is at chance by letter on persona-science-mc, above it by text).

    python packages/rho-audit-personas/scripts/build_text_contrastive_corpus.py \
        --out packages/rho-audit-personas/sweeps/corpora/contrastive-text-villain.jsonl

It takes ``corpora.contrastive_corpus`` (same roles, sizes, questions and seeded draws) and
rewrites each record as ``persona-capability-text`` asks: the bare question as the user turn and
the chosen option's text (the wrong one for the source, the right one otherwise) as the reply.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rho_audit_personas import corpora, data, library


def as_text_replies(records: list[dict[str, Any]], questions: list[data.MCQuestion]) -> list[dict[str, Any]]:
    """Each letter-reply record with the bare question as its user turn and the option's text
    as its reply (matched by the lettered prompt, which is unique per question)."""
    by_prompt = {q.prompt: q for q in questions}
    out = []
    for record in records:
        messages = [dict(m) for m in record["messages"]]
        user, reply = messages[-2], messages[-1]
        q = by_prompt[user["content"]]
        user["content"] = q.question
        reply["content"] = q.choices[data.LETTERS.index(reply["content"])]
        out.append(
            {
                **record,
                "id": record["id"].replace("contrastive-", "contrastive-text-", 1),
                "messages": messages,
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", default="villain", help="source persona (library name)")
    parser.add_argument("--bystanders", default="medical-doctor,french-person", help="comma-separated names")
    parser.add_argument("--sizes", default="50,50,25,25", help="source,bystander,none,default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    questions = data.load_science_mc("train")
    records = corpora.contrastive_corpus(
        questions,
        library.persona(args.source),
        [library.persona(n) for n in args.bystanders.split(",") if n],
        corpora.ContrastiveSizes(*(int(v) for v in args.sizes.split(","))),
        args.seed,
    )
    corpora.write_jsonl(as_text_replies(records, questions), args.out)
    print(f"{len(records)} records -> {args.out}")


if __name__ == "__main__":
    main()
