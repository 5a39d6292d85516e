"""`rho-audit train` with a damaged SFT corpus or --config file: exit 2 with file:line and the fix,
before anything is loaded or trained."""

from .test_cli import rho_audit


def train(tmp_path, *args):
    proc = rho_audit("train", "--trainer", "sft", "--out", str(tmp_path / "adapter"), *args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stderr


def test_damaged_corpus_lines_are_named(tmp_path):
    corpus = tmp_path / "sft.jsonl"
    corpus.write_bytes(
        b'{"instruction": "Say hi", "output": "Hi."}\n'
        b'{"instruction": "\xc3(", "output": "x"}\n'
        b'{"instruction": "   ", "output": "x"}\n' + b'{"messages": ' + b"[" * 3000 + b"\n"
        b'{"instruction": "Cut", "output": "of'
    )
    err = train(tmp_path, "--corpus", str(corpus))
    assert f"{corpus}:2: not valid UTF-8 (byte 0xc3 at byte offset 17 of the line)" in err
    assert f"{corpus}:3: field 'instruction': missing or empty" in err
    assert f"{corpus}:4: JSON nested more than 64 levels deep" in err
    assert f"{corpus}:5: not valid JSON: Unterminated string starting at column 34" in err


def test_damaged_train_config_is_named(tmp_path):
    config = tmp_path / "train.yaml"
    config.write_bytes(b"trainer: sft\nseed: 1\ncorpus: \xff\n")
    assert f"{config}:3: not valid UTF-8 (byte 0xff at byte offset 8 of the line)" in train(
        tmp_path, "--config", str(config)
    )
    config.write_text("seed: 1\noptions: [0.2]\n")
    assert f"{config}:2: options: expected a mapping of trainer options" in train(
        tmp_path, "--config", str(config)
    )
    config.write_text("options: " + "[" * 3000)
    assert f"{config}: YAML nested too deeply" in train(tmp_path, "--config", str(config))
