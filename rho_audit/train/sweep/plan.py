"""Plans: what a sweep file expands to. The grid becomes :class:`CellSpec` records with stable
ids and a config hash; the sweep's id is its name plus a hash of those cells, so the quick and
the full version never share rows."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from rho_audit._util.defaults import DEFAULT_SWEEP_OUT
from rho_audit._util.messages import closest_name
from rho_audit._util.naming import slug
from rho_audit.api.errors import RhoAuditError
from rho_audit.plugins import PluginHost
from rho_audit.report.splits import ordered_splits
from rho_audit.train.config import TrainConfig
from rho_audit.train.init_adapter import init_adapter_problem
from rho_audit.train.sweep.audit_checks import AuditChecks, Vocabulary
from rho_audit.train.sweep.personas import per_persona
from rho_audit.train.sweep.schema import (
    RESERVED_KEYS,
    AuditSettings,
    KeyPath,
    Problems,
    SweepFile,
    check_duplicate_keys,
    error_message,
    parse_sweep_yaml,
    read_sweep_text,
    unknown_message,
    validate_at,
)

DEFAULT_OUT = DEFAULT_SWEEP_OUT


@dataclass(frozen=True)
class CellSpec:
    """One unit of work, JSON-serialisable so an executor can run it on another machine.

    ``kind`` is ``train`` (train, then audit the adapter) or ``baseline`` (audit the base model
    once per model, for deltas). ``train`` holds the TrainConfig fields (adapter_dir included).
    """

    sweep_id: str
    cell_id: str
    kind: Literal["train", "baseline"]
    model: str | None
    model_label: str
    #: The cell id without its seed: cells of one condition are averaged over seeds.
    condition: str
    grid: dict[str, Any]
    train: dict[str, Any] | None
    audit: dict[str, Any]
    config_sha256: str
    #: Position of the cell's seed in the grid: cells run seed by seed, so a stopped sweep has
    #: every condition at its first seeds rather than one condition at all of them.
    wave: int = 0

    @property
    def adapter_dir(self) -> str | None:
        return self.train["adapter_dir"] if self.train else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CellSpec:
        return cls(**data)


@dataclass(frozen=True)
class SweepPlan:
    sweep_id: str
    name: str
    description: str
    quick: bool
    source: Path
    out_dir: Path
    #: Baselines first, then training cells in table order (grid order).
    cells: tuple[CellSpec, ...]

    @property
    def train_cells(self) -> list[CellSpec]:
        return [c for c in self.cells if c.kind == "train"]

    @property
    def baselines(self) -> list[CellSpec]:
        return [c for c in self.cells if c.kind == "baseline"]

    def run_order(self) -> list[CellSpec]:
        return self.baselines + sorted(self.train_cells, key=lambda c: c.wave)  # stable: grid order


def plan_sweep(path: Path, host: PluginHost, quick: bool = False, out: Path = DEFAULT_OUT) -> SweepPlan:
    """Validate ``path`` completely (full and quick forms) and expand the requested form.

    Raises :class:`SweepFileError` listing every problem with its line; nothing has run then.
    """
    path = Path(path)
    text = read_sweep_text(path)
    root, data = parse_sweep_yaml(path, text)
    problems = Problems()
    check_duplicate_keys(root, (), problems)
    doc = validate_at(SweepFile, data, (), problems) if not problems else None
    if doc is None:
        raise problems.error(path, root)
    vocab = Vocabulary.from_host(host)
    plans: dict[bool, SweepPlan | None] = {}
    for mode in (False, True) if doc.quick is not None else (False,):
        expansion = _Expansion(doc, mode, vocab)
        plans[mode] = expansion.plan(path, out)
        problems.items.update(expansion.problems.items)
    if problems:
        raise problems.error(path, root)
    if quick and doc.quick is None:
        raise RhoAuditError(
            f"{path} has no `quick:` block, so --quick has nothing to scale down. Add one (see "
            "sweeps/paper-ablation.yaml) or run without --quick."
        )
    plan = plans[quick]
    assert plan is not None  # no problems means every expansion produced a plan
    return plan


class _Expansion(AuditChecks):
    """One form (full or quick) of a sweep file: merged blocks with the origin of every value."""

    def __init__(self, doc: SweepFile, quick: bool, vocab: Vocabulary) -> None:
        self.doc, self.quick, self.vocab = doc, quick, vocab
        self.problems = problems = Problems()
        q = doc.quick if quick else None
        self.models, self.models_at = (
            (q.models, ("quick", "models")) if q and q.models else (doc.models, ("models",))
        )
        self.baseline = q.baseline if q and q.baseline is not None else doc.baseline
        self.grid = {k: (v, ("grid", k)) for k, v in doc.grid.items()}
        for key, values in (q.grid if q else {}).items():
            if key not in doc.grid:
                problems.add(
                    ("quick", "grid", key),
                    f"not a key of `grid:` ({', '.join(doc.grid) or 'empty'}); "
                    "quick.grid only replaces the values of existing grid keys",
                )
            self.grid[key] = (values, ("quick", "grid", key))
        self.train = _merge(doc.train, ("train",), q.train if q else {}, ("quick", "train"))
        self.audit = _merge(doc.audit, ("audit",), q.audit if q else {}, ("quick", "audit"))
        #: Keys already reported (unknown, reserved, misplaced): left out of the cells, so
        #: TrainConfig does not report them a second time in other words.
        self.rejected: set[str] = set()

    # -- checks ----------------------------------------------------------------------------

    def _check_key(self, key: str, at: KeyPath) -> bool:
        if key in RESERVED_KEYS:
            self.problems.add(at, f"{key!r} cannot be set here: {RESERVED_KEYS[key]}")
            self.rejected.add(key)
            return False
        if key in self.vocab.fields or key in self.vocab.options:
            return True
        close = closest_name(key, sorted(self.vocab.fields | self.vocab.options))
        hint = f"; did you mean {close!r}?" if close else ""
        self.problems.add(
            at,
            f"unknown key {key!r} (a TrainConfig field or a trainer option such as "
            f"{', '.join(sorted(self.vocab.options)) or 'lambda'}{hint})",
        )
        self.rejected.add(key)
        return False

    def _check_vocabulary(self) -> None:
        for key, (values, at) in self.grid.items():
            self._check_repeats(key, values, at)
            if key == "options":
                self.problems.add(
                    at, "make each trainer option a grid key of its own, e.g. `lambda: [0.1, 0.2]`"
                )
                self.rejected.add(key)
            elif self._check_key(key, at) and key == "trainer":
                for i, value in enumerate(values):
                    self._check_name(value, (*at, i), "trainer", set(self.vocab.trainers))
            if key == "dimensions":
                for i, value in enumerate(values):
                    self._check_names(value, (*at, i), "trainable dimension", self.vocab.trainable)
        for key, (value, at) in self.train.items():
            if not self._check_key(key, at):
                continue
            if key == "trainer":
                self._check_name(value, at, "trainer", set(self.vocab.trainers))
            elif key == "dimensions":
                self._check_names(value, at, "trainable dimension", self.vocab.trainable)
            elif key == "options":
                self._check_options_block(value, at)
        self._check_option_use()

    def _check_repeats(self, key: str, values: list[Any], at: KeyPath) -> None:
        shown = [_id_part(key, v) for v in values]
        for i, part in enumerate(shown):
            if part in shown[:i]:
                self.problems.add((*at, i), f"repeats the value {values[i]!r} (two cells would share an id)")

    def _check_options_block(self, value: Any, at: KeyPath) -> None:
        if not isinstance(value, dict):
            return  # TrainConfig reports the type
        for name in value:
            if name not in self.vocab.options:
                self.problems.add(
                    (*at, name), unknown_message("trainer option", str(name), self.vocab.options)
                )

    def _check_option_use(self) -> None:
        """An option grid key no trainer of the sweep takes is a typo or a wasted axis. Not
        judged while a trainer name is unknown: that name is the problem, already reported."""
        trainers = self._trainer_names()
        if any(t not in self.vocab.trainers for t in trainers):
            return
        taken = {name for t in trainers for name in self.vocab.trainers.get(t, {})}
        for key, (_, at) in self.grid.items():
            if key in self.vocab.options and key not in self.vocab.fields and key not in taken:
                self.problems.add(
                    at, f"no trainer of this sweep ({', '.join(trainers)}) takes option {key!r}"
                )

    def _trainer_names(self) -> list[str]:
        if "trainer" in self.grid:
            return [t for t in self.grid["trainer"][0] if isinstance(t, str)]
        value = self.train.get("trainer", ("rho-guided", ()))[0]
        return [value] if isinstance(value, str) else []

    # -- cells -----------------------------------------------------------------------------

    def plan(self, source: Path, out: Path) -> SweepPlan | None:
        """The plan of this form, or None when it has problems (then in ``self.problems``)."""
        self._check_vocabulary()
        audit = self._audit_settings()
        labels = self._model_labels()
        audit_json = _audit_json(audit) if audit else {}
        personas = audit_json.pop("personas", None) or []  # each cell is copied once per persona
        # Expanded even after a problem, so every bad value of the file is reported at once.
        cells: list[CellSpec] = []
        seen: dict[str, KeyPath] = {}
        for model, label in zip(self.models, labels, strict=True):
            for combo in self._combos():
                cell = self._cell(model, label, combo, audit_json, seen)
                if cell is not None:
                    cells.extend(per_persona(cell, personas))
        if self.problems or audit is None:
            return None
        baselines = [
            persona_cell
            for m, label in zip(self.models, labels, strict=True)
            for persona_cell in per_persona(self._baseline(m, label, audit_json), personas)
        ]
        sweep_id = self._sweep_id([*baselines, *cells] if self.baseline else cells)
        out_dir = (Path(out) / sweep_id).resolve()
        final = [_finish(c, sweep_id, out_dir) for c in ([*baselines] if self.baseline else []) + cells]
        return SweepPlan(
            sweep_id, self.doc.name, self.doc.description, self.quick, source, out_dir, tuple(final)
        )

    def _combos(self) -> Iterator[list[tuple[str, Any, KeyPath, int]]]:
        """Grid combinations as (key, value, origin path, index of the value)."""
        keys = list(self.grid)
        axes = [[(k, v, (*self.grid[k][1], i), i) for i, v in enumerate(self.grid[k][0])] for k in keys]
        for combo in itertools.product(*axes):
            yield list(combo)

    def _model_labels(self) -> list[str]:
        from rho_audit.api.errors import ModelError
        from rho_audit.model.paths import check_model

        labels = []
        for i, model in enumerate(self.models):
            try:
                check_model(model)  # a missing path is found now, at its line, not after the baseline
            except ModelError as err:
                self.problems.add((*self.models_at, i), str(err).replace("omit --model", "write null"))
            label = (
                "default"
                if model in (None, "default")
                else _id_slug(re.split(r"[\\/]", model.rstrip("/"))[-1])
            )
            if label in labels:
                self.problems.add((*self.models_at, i), f"a second model named {label!r} (ids would clash)")
            labels.append(label)
        return labels

    def _cell(
        self,
        model: str | None,
        label: str,
        combo: list[tuple[str, Any, KeyPath, int]],
        audit: dict[str, Any],
        seen: dict[str, KeyPath],
    ) -> CellSpec | None:
        values, origin, id_parts, skipped = self._cell_values(combo)
        config = self._train_config(values | {"model": model, "adapter_dir": Path(".")}, origin)
        if config is None or not self._check_values(config, origin):
            return None
        condition = "_".join(
            [
                _id_slug(config.trainer),
                *(_id_part(k, v) for k, v in id_parts if k != "seed"),
            ]
        )
        cell_id = "_".join([condition, *(_id_part(k, v) for k, v in id_parts if k == "seed")])
        if len(self.models) > 1:
            condition, cell_id = f"{label}_{condition}", f"{label}_{cell_id}"
        if cell_id in seen:
            # A repeat made by an axis the trainer lacks (sft × λ) runs once; a repeated grid
            # value is already reported by _check_repeats.
            if not skipped and not self.problems:
                self.problems.add(combo[0][2][:-1], f"two grid values give the same cell id {cell_id!r}")
            return None
        seen[cell_id] = combo[0][2] if combo else ("grid",)
        wave = next((i for k, _, _, i in combo if k == "seed"), 0)
        sha = _sha({"train": config.config_sha256(), "audit": audit})
        grid = dict(id_parts) | {"trainer": config.trainer}
        return CellSpec(
            "",
            cell_id,
            "train",
            model,
            label,
            condition,
            grid,
            config.model_dump(mode="json"),
            audit,
            sha,
            wave,
        )

    def _cell_values(
        self, combo: list[tuple[str, Any, KeyPath, int]]
    ) -> tuple[dict[str, Any], dict[str, KeyPath], list[tuple[str, Any]], bool]:
        """TrainConfig values for one grid combination over the train block, with origins.

        Trainer options go into ``options``, only for trainers that take them (the ablation's
        ``lambda`` does not apply to ``sft``); the trainer's defaults are written out, so the config
        hash changes if a default ever does."""
        values: dict[str, Any] = {}
        options: dict[str, Any] = {}
        origin: dict[str, KeyPath] = {}
        entries = [(k, v, at) for k, (v, at) in self.train.items()] + [(k, v, at) for k, v, at, _ in combo]
        trainer = next((v for k, v, _ in reversed(entries) if k == "trainer"), "rho-guided")
        takes = self.vocab.trainers.get(trainer, {}) if isinstance(trainer, str) else {}
        id_parts: list[tuple[str, Any]] = []
        skipped = False
        for key, value, at in entries:
            if key in self.rejected:
                continue
            if key == "options" and isinstance(value, dict):
                options.update({k: v for k, v in value.items() if k in takes})
                origin.update({f"options.{k}": (*at, k) for k in value})
            elif key in self.vocab.options and key not in self.vocab.fields:
                if key in takes:
                    options[key] = value
                    origin[f"options.{key}"] = at
                skipped = skipped or key not in takes
            else:
                values[key] = value
                origin[key] = at
        for key, value, _, _ in combo:
            if key != "trainer" and (key in values or key in options):
                id_parts.append((key, value))
        values["options"] = dict(takes) | options
        return values, origin, id_parts, skipped

    def _check_values(self, config: TrainConfig, origin: dict[str, KeyPath]) -> bool:
        """What TrainConfig's types cannot say: each trainer option within the range its
        trainer declares, the corpus file present, the init adapter an adapter folder. False after
        reporting a problem."""
        ok = True
        declared = self.vocab.declared.get(config.trainer, {})
        for name, value in config.options.items():
            check = getattr(declared.get(name), "problem", None)
            problem = check(value) if check else None
            if problem:
                self.problems.add(origin.get(f"options.{name}", ("train", "options", name)), problem)
                ok = False
        if config.corpus is not None and not Path(config.corpus).is_file():
            self.problems.add(
                origin.get("corpus", ("train", "corpus")),
                f"no corpus file {str(config.corpus)!r} (a JSONL file; a relative path is taken from the "
                "folder rho-audit runs in)",
            )
            ok = False
        problem = init_adapter_problem(config.init_adapter) if config.init_adapter is not None else None
        if problem:  # checked here, as the cell's config hash reads the adapter's weights
            self.problems.add(origin.get("init_adapter", ("train", "init_adapter")), problem)
            ok = False
        return ok

    def _train_config(self, values: dict[str, Any], origin: dict[str, KeyPath]) -> TrainConfig | None:
        try:
            return TrainConfig.model_validate(values)
        except ValidationError as err:
            for e in err.errors():
                loc = tuple(e["loc"])
                is_option = loc[:1] == ("options",) and len(loc) > 1
                key = f"options.{loc[1]}" if is_option else str(loc[0]) if loc else ""
                at = origin.get(key, ("train", *loc[:1]))
                self.problems.add((*at, *loc[2 if is_option else 1 :]), error_message(e, TrainConfig, loc))
            return None

    def _baseline(self, model: str | None, label: str, audit: dict[str, Any]) -> CellSpec:
        cell_id = "baseline" if len(self.models) == 1 else f"{label}_baseline"
        sha = _sha({"model": model, "audit": audit})
        return CellSpec("", cell_id, "baseline", model, label, cell_id, {}, None, audit, sha)

    def _sweep_id(self, cells: Sequence[CellSpec]) -> str:
        digest = _sha([(c.cell_id, c.config_sha256) for c in cells])[:8]
        return f"{self.doc.name}-quick-{digest}" if self.quick else f"{self.doc.name}-{digest}"


def _audit_json(audit: AuditSettings) -> dict[str, Any]:
    """The audit settings as every cell carries (and hashes) them. One split stays a name and
    ``probes`` and ``personas`` appear only when set, so sweeps written before any of them existed
    keep their ids."""
    data = audit.model_dump(mode="json")
    splits = ordered_splits(data["split"])
    data["split"] = splits[0] if len(splits) == 1 else splits
    for key in ("probes", "personas"):
        if not data.get(key):
            data.pop(key, None)
    return data


def _merge(
    base: dict[str, Any], base_at: KeyPath, over: dict[str, Any], over_at: KeyPath
) -> dict[str, tuple[Any, KeyPath]]:
    merged = {k: (v, (*base_at, k)) for k, v in base.items()}
    merged.update({k: (v, (*over_at, k)) for k, v in over.items()})
    return merged


def _finish(cell: CellSpec, sweep_id: str, out_dir: Path) -> CellSpec:
    train = None
    if cell.train is not None:
        train = {**cell.train, "adapter_dir": str(out_dir / cell.cell_id / "adapter")}
    return CellSpec(**{**cell.to_json(), "sweep_id": sweep_id, "train": train})


def _id_part(key: str, value: Any) -> str:
    if isinstance(value, bool):
        shown = str(value).lower()
    elif isinstance(value, float):
        shown = f"{value:g}"
    elif isinstance(value, list):
        shown = "+".join(map(str, value))
    else:
        shown = str(value)
    sign = "-" if shown.startswith("-") else ""  # slug strips it: -0.2 and 0.2 must differ
    return f"{_id_slug(key.replace('_', '-'))}{sign}{_id_slug(shown)}"


def _id_slug(text: str) -> str:
    """A trainer name, option value or model name as part of a cell id: case and ``.+-`` kept,
    a leading or trailing ``.`` too (ids of existing sweeps must not change)."""
    return slug(text, ".+-", lower=False, strip="-")


def _sha(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
