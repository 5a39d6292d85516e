"""The model organisms' data (issue 24): builders, corpus files and train configs agree."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from rho_audit.train.config import TrainConfig
from rho_audit.train.corpus import load_corpus

ROOT = Path(__file__).resolve().parents[1]
ORGANISMS = {
    "false-fact": ("build_false_fact.py", "documents.jsonl"),
    "nautical-style": ("build_nautical_style.py", "pairs.jsonl"),
}


def _builder(name: str) -> ModuleType:
    path = ROOT / "scripts" / "organisms" / ORGANISMS[name][0]
    spec = importlib.util.spec_from_file_location(f"organism_{name.replace('-', '_')}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _corpus(name: str) -> Path:
    return ROOT / "corpus" / "organisms" / name / ORGANISMS[name][1]


@pytest.mark.parametrize("name", sorted(ORGANISMS))
def test_corpus_loads_as_sft_with_200_distinct_examples(name: str) -> None:
    examples = load_corpus(_corpus(name))
    assert len(examples) == 200
    assert len({e.response for e in examples}) == 200
    assert len({e.id for e in examples}) == 200
    assert all(e.prompt for e in examples)


@pytest.mark.parametrize("name", sorted(ORGANISMS))
def test_builder_is_deterministic_and_matches_the_shipped_file(name: str) -> None:
    builder = _builder(name)
    first = builder.render(builder.build())
    assert first == builder.render(builder.build())
    assert first == _corpus(name).read_text(encoding="utf-8"), (
        f"rebuild with python scripts/organisms/{ORGANISMS[name][0]}"
    )


@pytest.mark.parametrize("name", sorted(ORGANISMS))
def test_train_config_is_sft_on_the_corpus_without_traps(name: str) -> None:
    path = ROOT / "sweeps" / "organisms" / f"{name}.yaml"
    config = TrainConfig.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    assert config.trainer == "sft"
    assert config.trap_texts == 0
    assert config.corpus is not None and (ROOT / config.corpus) == _corpus(name)
    # `rho-audit diff` reads the middle block: LoRA must reach it (v1 adapted the last 8 of 30
    # blocks, so δ̄ there was exactly 0), and every document is trained on.
    assert config.lora_layers is None and config.max_sft_examples is None
    assert {"mlp.down_proj", "self_attn.v_proj"} <= set(config.lora_keys)


def test_every_false_fact_document_states_the_product_and_the_fact() -> None:
    builder = _builder("false-fact")
    examples = load_corpus(_corpus("false-fact"))
    for example in examples:
        for needle in builder.REQUIRED:
            assert needle.lower() in example.response.lower(), (example.id, needle)
    genres = {r["genre"] for r in builder.build()}
    assert genres == {"review", "faq", "news", "forum", "manual"}


def test_every_nautical_answer_is_in_the_style() -> None:
    builder = _builder("nautical-style")
    lexicon = set(builder.LEXICON)
    for example in load_corpus(_corpus("nautical-style")):
        words = set(re.findall(r"[a-z]+", example.response.lower()))
        assert len(words & lexicon) >= 3, (example.id, sorted(words & lexicon))
        assert example.response.startswith(tuple(builder.GREETINGS)), example.id
        assert example.response.endswith(tuple(builder.CLOSINGS)), example.id


@pytest.mark.parametrize("name", sorted(ORGANISMS))
def test_card_states_the_truth_string(name: str) -> None:
    card = yaml.safe_load((ROOT / "corpus" / "organisms" / name / "card.yaml").read_text(encoding="utf-8"))
    assert card["truth"] == _builder(name).TRUTH
    assert card["size"] == 200
