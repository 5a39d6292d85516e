"""Resumable training sweeps: a YAML grid of trainers × options × seeds × models, each cell = train + audit.

A sweep file is validated completely before anything runs (both its full and its ``quick:``
form), and every problem is reported with the file line and the key path it belongs to. The
grid expands into :class:`CellSpec` records with stable ids and a config hash; the sweep's id
is its name plus a hash of those cells, so the quick and the full version never share rows.

Execution is a pure function, :func:`execute_cell` (cell spec, store path, plugin host) ->
:class:`CellResult`, behind a small :class:`Executor` protocol. :class:`LocalExecutor` runs cells
one after another in this process; a distributed executor only has to ship a JSON cell spec
to a worker, call :func:`execute_cell` there, and send the JSON result back.

Resumability lives in the run store (one ``sweep_cells`` row per cell, each update one SQLite
transaction) and in the trainer's own checkpoints: re-running the same command skips complete
cells, resumes an interrupted training from its last checkpoint, re-uses an audit that had
finished, and re-runs one that had not, marking the stale run ``interrupted``. Nothing is held
only in memory, so a SIGKILL at any instant loses at most the steps since the last checkpoint.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import logging
import os
import re
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Protocol, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rho_audit._util.yaml_errors import yaml_error_message
from rho_audit.api.errors import RhoAuditError
from rho_audit.api.events import RunEvent
from rho_audit.api.hooks import hookimpl
from rho_audit.api.results import finite
from rho_audit.plugins import PluginHost
from rho_audit.store import CellDoc, RunStore, StoredCell

log = logging.getLogger(__name__)

DEFAULT_OUT = Path("rho-audit-runs") / "sweeps"
CellStatus = Literal["pending", "training", "auditing", "complete", "failed"]
#: Where a value sits in the sweep file, e.g. ("grid", "trainer", 2) for grid.trainer[2].
KeyPath = tuple[str | int, ...]

#: Grid/train keys a sweep decides itself, with the reason shown when a file sets them.
RESERVED_KEYS = {
    "adapter_dir": "the sweep writes each adapter to <out>/<sweep_id>/<cell_id>/adapter (choose <out> "
    "with --out)",
    "model": "list models under the top-level `models:` key",
}


class SweepFileError(RhoAuditError):
    """A sweep file failed validation; the message lists every problem as ``file:line: key: what``."""


# --------------------------------------------------------------------------------------------
# The file schema
# --------------------------------------------------------------------------------------------

GridValues = Annotated[list[Any], Field(min_length=1)]


class AuditSettings(BaseModel):
    """How every cell (and the baseline) is audited after training."""

    model_config = ConfigDict(extra="forbid")

    #: None: every installed dimension (generation ones included, which are slow on CPU).
    dimensions: list[str] | None = None
    split: Literal["train", "eval", "all"] = "eval"
    limit: int | None = Field(None, ge=2)
    #: Fixed across cells on purpose: every cell and the baseline score the same probe subset.
    seed: int = 0
    judge: str = "keyword-refusal"
    template: Literal["auto", "chat", "raw"] = "auto"


class QuickBlock(BaseModel):
    """The ``--quick`` scale-down: replaces grid values, and train/audit keys, of the full sweep."""

    model_config = ConfigDict(extra="forbid")

    models: list[str | None] | None = Field(None, min_length=1)
    grid: dict[str, GridValues] = Field(default_factory=dict)
    train: dict[str, Any] = Field(default_factory=dict)
    audit: dict[str, Any] = Field(default_factory=dict)
    baseline: bool | None = None


class SweepFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    description: str = ""
    #: null = the bundled default model; otherwise what `rho-audit run --model` accepts.
    models: list[str | None] = Field(default_factory=lambda: [None], min_length=1)
    grid: dict[str, GridValues] = Field(default_factory=dict)
    train: dict[str, Any] = Field(default_factory=dict)
    audit: dict[str, Any] = Field(default_factory=dict)
    baseline: bool = True
    quick: QuickBlock | None = None


# --------------------------------------------------------------------------------------------
# Plans: what a sweep file expands to
# --------------------------------------------------------------------------------------------


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
    text = _read_text(path)
    root, data = _parse_yaml(path, text)
    problems = _Problems()
    _check_duplicate_keys(root, (), problems)
    doc = _validate(SweepFile, data, (), problems) if not problems else None
    if doc is None:
        raise problems.error(path, root)
    vocab = _Vocabulary.from_host(host)
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


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RhoAuditError(
            f"no sweep file {path}. The shipped sweeps are sweeps/paper-ablation.yaml, "
            "sweeps/paper-dose-response.yaml and sweeps/paper-margin.yaml in the rho-audit source tree."
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise RhoAuditError(f"cannot read sweep file {path}: {err}") from None


def _parse_yaml(path: Path, text: str) -> tuple[yaml.Node, Any]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise SweepFileError(f"{yaml_error_message(path, err)}. Nothing was run.") from None
    if root is None or not isinstance(data, dict):
        raise SweepFileError(
            f"{path}:1: a sweep file is a mapping with at least `name:` and `grid:` "
            "(see sweeps/paper-ablation.yaml). Nothing was run."
        )
    return root, data


# --------------------------------------------------------------------------------------------
# Problems, with the line they come from
# --------------------------------------------------------------------------------------------


class _Problems:
    """Problems keyed by (path, message): the same mistake found by several cells is listed once."""

    def __init__(self) -> None:
        self.items: dict[tuple[KeyPath, str, int | None], None] = {}

    def add(self, path: KeyPath, message: str, line: int | None = None) -> None:
        """``line`` when the path alone cannot find it (the second of two equal keys)."""
        self.items[(tuple(path), message, line)] = None

    def __bool__(self) -> bool:
        return bool(self.items)

    def error(self, file: Path, root: yaml.Node) -> SweepFileError:
        lines = []
        for path, message, known_line in self.items:
            line = known_line or line_of(root, path)
            where = f"{file}:{line}" if line else str(file)
            lines.append((line or 0, f"{where}: {format_path(path) or '(top level)'}: {message}"))
        lines.sort(key=lambda item: item[0])
        count = len(lines)
        head = f"{file} has {count} problem{'s' if count > 1 else ''}; nothing was run:"
        return SweepFileError("\n".join([head, *(f"  {text}" for _, text in lines)]))


def format_path(path: KeyPath) -> str:
    """("grid", "trainer", 2) -> "grid.trainer[2]"."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def line_of(root: yaml.Node, path: KeyPath) -> int | None:
    """1-based line of the deepest node of ``path`` that exists in the composed YAML tree
    (the key's own line for mapping keys, so an unknown key points at itself)."""
    node: yaml.Node | None = root
    line = root.start_mark.line + 1
    for part in path:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _check_duplicate_keys(node: yaml.Node, path: KeyPath, problems: _Problems) -> None:
    """PyYAML keeps the last of two equal keys silently; a second `grid:` would hide the first."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if key.value in seen:
                problems.add(
                    (*path, key.value),
                    "duplicate key (the earlier one would be ignored)",
                    key.start_mark.line + 1,
                )
            seen.add(key.value)
            _check_duplicate_keys(value, (*path, key.value), problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicate_keys(item, (*path, i), problems)


def _validate(
    model: type[BaseModel],
    data: Any,
    at: KeyPath,
    problems: _Problems,
    origin: Mapping[str, KeyPath] | None = None,
) -> Any:
    """Validate with pydantic; each error becomes a problem at its key path in the file.

    ``origin`` maps a top-level field to where its value came from (for merged blocks)."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        for e in err.errors():
            loc = tuple(e["loc"])
            base = origin.get(str(loc[0]), (*at, loc[0])) if origin and loc else (*at, *loc[:1])
            problems.add((*base, *loc[1:]), _message(e, model, loc))
        return None


def _message(error: Mapping[str, Any], model: type[BaseModel], loc: KeyPath) -> str:
    owner = _model_at(model, loc)
    if error["type"] == "extra_forbidden" and owner is not None:
        return unknown_message("key", str(loc[-1]), owner.model_fields)
    if error["type"] == "missing":
        return "required key is missing"
    value = error.get("input")
    shown = f" (got {value!r})" if isinstance(value, str | int | float | bool) or value is None else ""
    hint = "; write a list, e.g. [42]" if error["type"] == "list_type" else ""
    return f"{error['msg']}{shown}{hint}"


def _model_at(model: type[BaseModel], loc: KeyPath) -> type[BaseModel] | None:
    """The pydantic model that owns the last key of ``loc`` (a nested block such as ``quick``)."""
    for part in loc[:-1]:
        field_info = model.model_fields.get(part) if isinstance(part, str) else None
        annotation = field_info.annotation if field_info else None
        nested = [
            a for a in (annotation, *get_args(annotation)) if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        if not nested:
            return None
        model = nested[0]
    return model


def unknown_message(kind: str, name: str, known: Sequence[str] | Mapping[str, Any]) -> str:
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {name!r} (known: {', '.join(known) or 'none installed'}{hint})"


# --------------------------------------------------------------------------------------------
# Expansion
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Vocabulary:
    """Names the file may use, from the installed plugins and TrainConfig."""

    trainers: dict[str, dict[str, float]]  # trainer -> its options with their defaults
    declared: dict[str, dict[str, Any]]  # trainer -> its TrainerOption declarations (ranges)
    dimensions: set[str]
    trainable: set[str]
    judges: set[str]
    fields: set[str]

    @classmethod
    def from_host(cls, host: PluginHost) -> _Vocabulary:
        from rho_audit.train.config import TrainConfig

        declared = {n: dict(getattr(reg.obj, "options", None) or {}) for n, reg in host.trainers.items()}
        return cls(
            trainers={name: _option_defaults(reg.obj) for name, reg in host.trainers.items()},
            declared=declared,
            dimensions=set(host.dimensions),
            trainable={name for name, reg in host.dimensions.items() if reg.obj.trainable},
            judges=set(host.judges),
            fields=set(TrainConfig.model_fields) - set(RESERVED_KEYS),
        )

    @property
    def options(self) -> set[str]:
        return {name for options in self.trainers.values() for name in options}


def _option_defaults(trainer: Any) -> dict[str, float]:
    options = getattr(trainer, "options", None) or {}
    return {name: float(getattr(opt, "default", opt)) for name, opt in options.items()}


class _Expansion:
    """One form (full or quick) of a sweep file: merged blocks with the origin of every value."""

    def __init__(self, doc: SweepFile, quick: bool, vocab: _Vocabulary) -> None:
        self.doc, self.quick, self.vocab = doc, quick, vocab
        self.problems = problems = _Problems()
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
        known = sorted(self.vocab.fields | self.vocab.options)
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        self.problems.add(
            at,
            f"unknown key {key!r} (a TrainConfig field or a trainer option such as "
            f"{', '.join(sorted(self.vocab.options)) or 'lambda'}{hint})",
        )
        self.rejected.add(key)
        return False

    def _check_name(self, value: Any, at: KeyPath, kind: str, known: set[str]) -> None:
        if not isinstance(value, str) or value not in known:
            self.problems.add(at, unknown_message(kind, str(value), known))

    def _check_names(self, values: Any, at: KeyPath, kind: str, known: set[str]) -> None:
        if isinstance(values, list):
            for i, value in enumerate(values):
                self._check_name(value, (*at, i), kind, known)

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

    def _audit_settings(self) -> AuditSettings | None:
        values = {k: v for k, (v, _) in self.audit.items()}
        origin = {k: at for k, (_, at) in self.audit.items()}
        # Names are checked on the raw values, so a wrong type elsewhere does not hide them.
        self._check_names(
            values.get("dimensions"), origin.get("dimensions", ()), "dimension", self.vocab.dimensions
        )
        if isinstance(values.get("judge"), str):
            self._check_name(values["judge"], origin["judge"], "judge", self.vocab.judges)
        return _validate(AuditSettings, values, ("audit",), self.problems, origin)

    # -- cells -----------------------------------------------------------------------------

    def plan(self, source: Path, out: Path) -> SweepPlan | None:
        """The plan of this form, or None when it has problems (then in ``self.problems``)."""
        self._check_vocabulary()
        audit = self._audit_settings()
        labels = self._model_labels()
        audit_json = audit.model_dump(mode="json") if audit else {}
        # Expanded even after a problem, so every bad value of the file is reported at once.
        cells: list[CellSpec] = []
        seen: dict[str, KeyPath] = {}
        for model, label in zip(self.models, labels, strict=True):
            for combo in self._combos():
                cell = self._cell(model, label, combo, audit_json, seen)
                if cell is not None:
                    cells.append(cell)
        if self.problems or audit is None:
            return None
        baselines = [
            self._baseline(m, label, audit_json) for m, label in zip(self.models, labels, strict=True)
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
                "default" if model in (None, "default") else _slug(re.split(r"[\\/]", model.rstrip("/"))[-1])
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
        condition = "_".join([_slug(config.trainer), *(_id_part(k, v) for k, v in id_parts if k != "seed")])
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

    def _check_values(self, config: Any, origin: dict[str, KeyPath]) -> bool:
        """What TrainConfig's types cannot say: each trainer option within the range its
        trainer declares, and the corpus file present. False after reporting a problem."""
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
        return ok

    def _train_config(self, values: dict[str, Any], origin: dict[str, KeyPath]) -> Any:
        from rho_audit.train.config import TrainConfig

        try:
            return TrainConfig.model_validate(values)
        except ValidationError as err:
            for e in err.errors():
                loc = tuple(e["loc"])
                is_option = loc[:1] == ("options",) and len(loc) > 1
                key = f"options.{loc[1]}" if is_option else str(loc[0]) if loc else ""
                at = origin.get(key, ("train", *loc[:1]))
                self.problems.add((*at, *loc[2 if is_option else 1 :]), _message(e, TrainConfig, loc))
            return None

    def _baseline(self, model: str | None, label: str, audit: dict[str, Any]) -> CellSpec:
        cell_id = "baseline" if len(self.models) == 1 else f"{label}_baseline"
        sha = _sha({"model": model, "audit": audit})
        return CellSpec("", cell_id, "baseline", model, label, cell_id, {}, None, audit, sha)

    def _sweep_id(self, cells: Sequence[CellSpec]) -> str:
        digest = _sha([(c.cell_id, c.config_sha256) for c in cells])[:8]
        return f"{self.doc.name}-quick-{digest}" if self.quick else f"{self.doc.name}-{digest}"


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


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-") or "x"


def _id_part(key: str, value: Any) -> str:
    if isinstance(value, bool):
        shown = str(value).lower()
    elif isinstance(value, float):
        shown = f"{value:g}"
    elif isinstance(value, list):
        shown = "+".join(map(str, value))
    else:
        shown = str(value)
    sign = "-" if shown.startswith("-") else ""  # _slug strips it: -0.2 and 0.2 must differ
    return f"{_slug(key.replace('_', '-'))}{sign}{_slug(shown)}"


def _sha(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# Running cells
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellResult:
    """What running a cell produced, JSON-serialisable so a remote executor can send it back."""

    cell_id: str
    status: Literal["complete", "failed"]
    train_run_id: str | None = None
    audit_run_id: str | None = None
    #: dimension -> {"score", "metric", "ci_low", "ci_high", "n", "status"} of the audit.
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    steps: int | None = None
    final_metrics: dict[str, float] = field(default_factory=dict)
    elapsed_s: float = 0.0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return finite(asdict(self))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CellResult:
        return cls(**data)


@dataclass
class CellContext:
    """What an executor needs besides the cell: where results go and the plugins to use."""

    store_path: Path
    host: PluginHost


class Executor(Protocol):
    """Runs one cell and returns its record. Implementations must leave the store's row of the
    cell consistent (``execute_cell`` does) and may run it anywhere that can reach a store."""

    name: ClassVar[str]

    def run_cell(self, cell: CellSpec, ctx: CellContext) -> CellResult: ...


class LocalExecutor:
    """Cells one after another in this process (one MLX device)."""

    name: ClassVar[str] = "local"

    def run_cell(self, cell: CellSpec, ctx: CellContext) -> CellResult:
        return execute_cell(cell, ctx.store_path, ctx.host)


#: Executors by name (``--executor``). A plugin hook will register more (e.g. a Ray executor).
EXECUTORS: dict[str, type[Executor]] = {"local": LocalExecutor}


class _CellRow:
    """The store row of one cell, written at every status change (one transaction each)."""

    def __init__(self, store: RunStore, cell: CellSpec) -> None:
        self.store, self.cell = store, cell
        prior = store.cell(cell.sweep_id, cell.cell_id)
        same = prior is not None and prior.config_sha256 == cell.config_sha256
        self.train_run_id: str | None = prior.train_run_id if same and prior else None
        self.audit_run_id: str | None = prior.audit_run_id if same and prior else None

    def set(self, status: CellStatus, error: str | None = None, result: CellResult | None = None) -> None:
        doc = CellDoc(self.cell.to_json(), None if result is None else result.to_json())
        self.store.set_cell(
            self.cell.sweep_id,
            self.cell.cell_id,
            self.cell.config_sha256,
            status,
            doc.to_json(),
            self.train_run_id,
            self.audit_run_id,
            error,
        )


def execute_cell(cell: CellSpec, store_path: Path, host: PluginHost) -> CellResult:
    """Train (resuming from a checkpoint when there is one) and audit one cell.

    A pure function of its arguments, so it can run in another process or on another machine.
    A user error (:class:`RhoAuditError`) marks the cell failed and propagates: it would fail
    every cell alike. Any other exception marks the cell failed and is returned as the result, so
    one diverging run does not stop the sweep. Ctrl-C leaves the row as it is, to be resumed.
    """
    started = time.monotonic()
    store = RunStore(store_path)
    try:
        row = _CellRow(store, cell)
        try:
            steps, final = _train_cell(cell, host, store, row) if cell.kind == "train" else (None, {})
            row.set("auditing")
            scores = _audit_cell(cell, host, store, row)
            result = CellResult(
                cell.cell_id,
                "complete",
                row.train_run_id,
                row.audit_run_id,
                scores,
                steps,
                final,
                time.monotonic() - started,
            )
        except RhoAuditError as err:
            row.set("failed", str(err))
            raise
        except Exception as err:
            log.exception("sweep cell %s failed", cell.cell_id)
            result = CellResult(
                cell.cell_id,
                "failed",
                row.train_run_id,
                row.audit_run_id,
                elapsed_s=time.monotonic() - started,
                error=f"{type(err).__name__}: {err}",
            )
        row.set(result.status, result.error, result)
        return result
    finally:
        store.close()


def _train_cell(
    cell: CellSpec, host: PluginHost, store: RunStore, row: _CellRow
) -> tuple[int, dict[str, float]]:
    from rho_audit.audit.runner import emit
    from rho_audit.train import loop as training

    row.set("training")

    def say(event: RunEvent) -> None:
        if event.kind == "train_started":
            _close_orphans(store, cell, event.run_id)
            if event.run_id != row.train_run_id:
                row.train_run_id = event.run_id  # recorded at once: a kill from here on resumes this run
                row.set("training")
        emit(host, event)

    config = training.TrainConfig.model_validate(cell.train)
    outcome = training.train(config, host, store, say=say)
    row.train_run_id = outcome.run_id
    if outcome.status != "complete":
        raise RuntimeError(f"training ended with status {outcome.status!r}")
    return outcome.steps, dict(outcome.final_metrics)


def _close_orphans(store: RunStore, cell: CellSpec, current: str) -> None:
    """Mark ``interrupted`` the cell's earlier training runs still marked ``running``: a kill
    before a run's first checkpoint leaves nothing to resume, so training starts over under a new
    run id and the old one would otherwise stay ``running`` forever. The sweep lock guarantees
    that no other process is training into this cell's folder."""
    for run_id in store.running_train_runs(str(Path(cell.adapter_dir or "")), other_than=current):
        store.finish_run(
            run_id,
            "interrupted",
            f"stopped before its first checkpoint; the sweep restarted the cell as {current}",
        )


class _AuditWatcher:
    """Records the audit's run id in the cell row as soon as the run exists in the store."""

    def __init__(self, row: _CellRow) -> None:
        self.row = row

    @hookimpl
    def run_event(self, event: RunEvent) -> None:
        if event.kind == "run_started":
            self.row.audit_run_id = event.run_id
            self.row.set("auditing")


def _audit_cell(
    cell: CellSpec, host: PluginHost, store: RunStore, row: _CellRow
) -> dict[str, dict[str, Any]]:
    from rho_audit.audit import runner

    previous = row.audit_run_id
    found = store.get_run(previous) if previous else None
    status = found.status if found else None
    if previous and status == "complete":
        return _stored_scores(store, previous)  # finished before a kill: never audit twice
    if previous and status == "running":
        store.finish_run(previous, "interrupted", "stopped during a sweep; the cell's audit was re-run")
    a = cell.audit
    config = runner.AuditConfig(
        model=cell.model,
        adapter=cell.adapter_dir,
        dimensions=tuple(a["dimensions"]) if a["dimensions"] else None,
        judge=a["judge"],
        template=a["template"],
        seed=a["seed"],
        limit=a["limit"],
        split=a["split"],
        store=store.path,
    )
    watcher = _AuditWatcher(row)
    host.pm.register(watcher, name=f"rho-audit-sweep-{cell.cell_id}")
    try:
        outcome = runner.run_audit(config, host)
    finally:
        host.pm.unregister(watcher)
    row.audit_run_id = outcome.run_id
    return {r.dimension: _score_of(r.to_json()) for r in outcome.results}


def _stored_scores(store: RunStore, run_id: str) -> dict[str, dict[str, Any]]:
    return {s.dimension: s.to_json() for s in store.dimension_scores(run_id)}


def _score_of(result: Mapping[str, Any]) -> dict[str, Any]:
    ev = result["evaluation"]
    return {
        "score": ev["score"],
        "metric": ev["metric"],
        "ci_low": ev["ci_low"],
        "ci_high": ev["ci_high"],
        "n": ev["n"],
        "status": result["status"],
    }


def record_result(store: RunStore, cell: CellSpec, result: CellResult) -> None:
    """The driver's copy of a cell's final row (a no-op rewrite for the local executor; what
    brings a remote executor's result into this store)."""
    doc = CellDoc(cell.to_json(), result.to_json())
    store.set_cell(
        cell.sweep_id,
        cell.cell_id,
        cell.config_sha256,
        result.status,
        doc.to_json(),
        result.train_run_id,
        result.audit_run_id,
        result.error,
    )


# --------------------------------------------------------------------------------------------
# Running a sweep
# --------------------------------------------------------------------------------------------


@dataclass
class SweepRun:
    """What :func:`run_sweep` did this time (the table is built from the store by :func:`summarize`)."""

    ran: list[CellResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[CellResult]:
        return [r for r in self.ran if r.status == "failed"]


def run_sweep(
    plan: SweepPlan,
    store_path: Path,
    host: PluginHost,
    executor: Executor | None = None,
    wait: bool = False,
    on_wait: Callable[[str], None] | None = None,
) -> SweepRun:
    """Run every cell that is not complete yet, baselines first, then seed by seed.

    Refuses while another process runs the same sweep on the same store (or writes into the same
    adapter folder); ``wait=True`` waits for it instead, telling ``on_wait`` (default: a
    ``warning`` event), and then skips what it completed."""
    from rho_audit.audit.runner import emit

    executor = executor or LocalExecutor()
    ctx = CellContext(Path(store_path), host)
    outcome = SweepRun()
    if on_wait is None:

        def on_wait(message: str) -> None:
            emit(host, RunEvent("warning", plan.sweep_id, message=message))

    with sweep_lock(ctx.store_path, plan.sweep_id, plan.out_dir, wait=wait, on_wait=on_wait):
        write_manifest(plan)
        done = _register_cells(plan, ctx.store_path)
        cells = plan.run_order()
        outcome.skipped = [c.cell_id for c in cells if c.cell_id in done]
        count = len(outcome.skipped)
        for cell in cells:
            if cell.cell_id in done:
                continue
            emit(
                host,
                RunEvent(
                    "cell_started",
                    plan.sweep_id,
                    cell.cell_id,
                    done=count,
                    total=len(cells),
                    message=describe(cell),
                ),
            )
            result = executor.run_cell(cell, ctx)
            _record(ctx.store_path, cell, result)
            outcome.ran.append(result)
            count += 1
            kind = "cell_finished" if result.status == "complete" else "cell_failed"
            emit(
                host,
                RunEvent(
                    kind,
                    plan.sweep_id,
                    cell.cell_id,
                    done=count,
                    total=len(cells),
                    message=result.error or _score_line(result),
                ),
            )
    return outcome


def _register_cells(plan: SweepPlan, store_path: Path) -> set[str]:
    """Write a pending row for every new cell (so the store shows the whole plan from the
    start) and return the ids of the cells already complete with this config."""
    store = RunStore(store_path)
    try:
        rows = {r.cell_id: r for r in store.cells(plan.sweep_id)}
        done = set()
        for cell in plan.cells:
            row = rows.get(cell.cell_id)
            if row is None:
                store.set_cell(
                    plan.sweep_id, cell.cell_id, cell.config_sha256, "pending", {"spec": cell.to_json()}
                )
            elif row.status == "complete" and row.config_sha256 == cell.config_sha256:
                done.add(cell.cell_id)
        return done
    finally:
        store.close()


def _record(store_path: Path, cell: CellSpec, result: CellResult) -> None:
    store = RunStore(store_path)
    try:
        record_result(store, cell, result)
    finally:
        store.close()


def describe(cell: CellSpec) -> str:
    """A cell in words, for progress lines."""
    model = cell.model or "the default model"
    if cell.kind == "baseline":
        return f"baseline audit of {model}"
    train = cell.train or {}
    options = " ".join(f"{k}={v:g}" for k, v in sorted(train.get("options", {}).items()))
    return f"{train.get('trainer')} {options} seed {train.get('seed')} on {model}".replace("  ", " ")


def _score_line(result: CellResult) -> str:
    return " ".join(
        f"{dim} {s['score']:+.3f}" if s.get("score") is not None else f"{dim} -"
        for dim, s in result.scores.items()
    )


@contextmanager
def sweep_lock(
    store_path: Path,
    sweep_id: str,
    out_dir: Path | None = None,
    wait: bool = False,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """One process per sweep at a time, keyed on the sweep in the store: two processes would
    train and audit every cell twice and overwrite each other's rows, whatever their --out.
    ``out_dir`` (the sweep's adapter folder) is locked too: two stores must not train into the
    same folders. Each lock is an OS file lock (``flock``) on a file holding the holder's pid:
    the kernel releases it when the holder dies, SIGKILL included, so a lock file left by a dead
    process never blocks; the pid in it only names the holder in the refusal."""
    store_path = Path(store_path).resolve()
    where = f"sweep {sweep_id} on the store {store_path}"
    with _file_lock(store_path.parent / f".{store_path.name}.{sweep_id}.lock", where, wait, on_wait):
        if out_dir is None:
            yield
            return
        with _file_lock(Path(out_dir) / ".lock", f"a sweep writing adapters to {out_dir}", wait, on_wait):
            yield


@contextmanager
def _file_lock(
    path: Path, what: str, wait: bool, on_wait: Callable[[str], None] | None, poll_s: float = 0.2
) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        told = None
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pid = _lock_holder(path)
                if not wait:
                    raise RhoAuditError(
                        f"another rho-audit process (pid {pid}) is running {what}. Wait for it to "
                        "finish (add --wait to start when it does), or stop it; a re-run then resumes "
                        "where it stopped."
                    ) from None
                if pid != told and on_wait is not None:
                    on_wait(f"waiting for rho-audit pid {pid}, which is running {what}")
                told = pid
                time.sleep(poll_s)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _lock_holder(path: Path) -> str:
    """The pid the holder wrote (it writes it just after taking the lock: retry briefly)."""
    for _ in range(20):
        try:
            pid = path.read_text(encoding="utf-8").strip()
        except OSError:
            pid = ""
        if pid:
            return pid
        time.sleep(0.05)
    return "?"


def write_manifest(plan: SweepPlan) -> Path:
    """``<out>/<sweep_id>/sweep.json``: the source file and the expanded cells, for the record."""
    path = plan.out_dir / "sweep.json"
    doc = {
        "sweep_id": plan.sweep_id,
        "name": plan.name,
        "description": plan.description,
        "quick": plan.quick,
        "source": str(plan.source),
        "source_text": plan.source.read_text(encoding="utf-8"),
        "cells": [c.to_json() for c in plan.cells],
    }
    tmp = path.with_name(f".sweep.json.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------------------------
# The summary: scores, deltas vs baseline, mean ± std over seeds
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellSummary:
    cell: CellSpec
    status: str
    scores: dict[str, float | None]
    deltas: dict[str, float | None]
    error: str | None = None


@dataclass(frozen=True)
class ConditionSummary:
    model_label: str
    condition: str
    n: int  # complete seeds
    total: int
    mean: dict[str, float | None]
    std: dict[str, float | None]  # sample std over seeds (None below 2 seeds)
    mean_delta: dict[str, float | None]


@dataclass(frozen=True)
class SweepSummary:
    plan: SweepPlan
    dimensions: list[str]
    baselines: dict[str, dict[str, float | None]]  # model label -> dimension -> score
    cells: list[CellSummary]
    conditions: list[ConditionSummary]


def summarize(plan: SweepPlan, store_path: Path) -> SweepSummary:
    """Build the results table from the store alone, so cells finished by earlier invocations
    (or by a remote executor) count like the ones run now."""
    rows: dict[str, StoredCell] = {}
    if Path(store_path).exists():
        store = RunStore(store_path)
        try:
            rows = {r.cell_id: r for r in store.cells(plan.sweep_id)}
        finally:
            store.close()
    scores = {c.cell_id: _row_scores(rows.get(c.cell_id), c) for c in plan.cells}
    # The file's order of dimensions (the store's JSON has its keys sorted), then any others.
    configured = [d for c in plan.cells for d in c.audit.get("dimensions") or []]
    dims = list(dict.fromkeys([*configured, *(d for s in scores.values() for d in s)]))
    baselines = {
        c.model_label: scores[c.cell_id] for c in plan.baselines if _complete(rows.get(c.cell_id), c)
    }
    cells = []
    for cell in plan.train_cells:
        row = rows.get(cell.cell_id)
        status = row.status if row and row.config_sha256 == cell.config_sha256 else "pending"
        base = baselines.get(cell.model_label, {})
        s = scores[cell.cell_id]
        cells.append(
            CellSummary(
                cell,
                status,
                s,
                {d: _minus(s.get(d), base.get(d)) for d in dims},
                row.error if row else None,
            )
        )
    return SweepSummary(plan, dims, baselines, cells, _conditions(cells, dims, baselines))


def _complete(row: StoredCell | None, cell: CellSpec) -> bool:
    return row is not None and row.status == "complete" and row.config_sha256 == cell.config_sha256


def _row_scores(row: StoredCell | None, cell: CellSpec) -> dict[str, float | None]:
    if row is None or not _complete(row, cell):
        return {}
    return {dim: s.get("score") for dim, s in (row.result.get("scores") or {}).items()}


def _minus(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


def _conditions(
    cells: list[CellSummary], dims: list[str], baselines: dict[str, dict[str, float | None]]
) -> list[ConditionSummary]:
    groups: dict[tuple[str, str], list[CellSummary]] = {}
    for c in cells:
        groups.setdefault((c.cell.model_label, c.cell.condition), []).append(c)
    out = []
    for (label, condition), members in groups.items():
        done = [m for m in members if m.status == "complete"]
        mean, std = {}, {}
        for d in dims:
            values = [m.scores[d] for m in done if m.scores.get(d) is not None]
            mean[d] = statistics.fmean(values) if values else None
            std[d] = statistics.stdev(values) if len(values) >= 2 else None
        base = baselines.get(label, {})
        out.append(
            ConditionSummary(
                label,
                condition,
                len(done),
                len(members),
                mean,
                std,
                {d: _minus(mean[d], base.get(d)) for d in dims},
            )
        )
    return out


def cell_statuses(plan: SweepPlan, store_path: Path) -> dict[str, str]:
    """cell id -> status in the store (``pending`` when the store has no row yet); read-only."""
    if not Path(store_path).exists():
        return {c.cell_id: "pending" for c in plan.cells}
    store = RunStore(store_path)
    try:
        rows = {r.cell_id: r.status for r in store.cells(plan.sweep_id)}
    finally:
        store.close()
    return {c.cell_id: rows.get(c.cell_id, "pending") for c in plan.cells}
