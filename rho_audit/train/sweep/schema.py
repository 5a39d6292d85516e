"""The sweep file: its schema, and every problem in it reported with its line and key path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
)

from rho_audit._util.messages import closest_name
from rho_audit._util.yaml_errors import yaml_error_message
from rho_audit.api.errors import RhoAuditError

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


GridValues = Annotated[list[Any], Field(min_length=1)]


def _as_list(value: Any) -> Any:
    """``split: eval`` and ``split: [eval, train]`` both mean a list of splits."""
    return [value] if isinstance(value, str) else value


class AuditSettings(BaseModel):
    """How every cell (and the baseline) is audited after training."""

    model_config = ConfigDict(extra="forbid")

    #: None: every installed dimension (generation ones included, which are slow on CPU).
    dimensions: list[str] | None = None
    #: One split, or several: then every cell and the baseline are audited once per split. Held
    #: as a list; the names are checked by the plan (an unknown one gets "did you mean").
    split: Annotated[list[str], BeforeValidator(_as_list), Field(min_length=1)] = ["eval"]
    #: Extra probe sets each audit also scores, as ``rho-audit run --probes``: SET (scored by the
    #: dimension its card names, as ``DIM@SET``) or DIM=SET (DIM scores SET instead of its own).
    probes: list[str] | None = None
    limit: int | None = Field(None, ge=2)
    #: Fixed across cells on purpose: every cell and the baseline score the same probe subset.
    seed: int = 0
    judge: str = "keyword-refusal"
    #: The judge's options, as ``rho-audit run --judge-option KEY=VALUE``, e.g. ``{rubric: PATH}``
    #: (a relative path is taken from the folder rho-audit runs in). None: the judge's defaults.
    judge_options: dict[str, str | int | float | bool] | None = None
    template: Literal["auto", "chat", "raw"] = "auto"
    #: Registered persona names (``register_personas``): every cell and the baseline are then
    #: audited once per persona, each a cell of its own (``..._persona-NAME``); None: no persona.
    personas: list[str] | None = Field(None, min_length=1)
    #: Dimension options, as ``rho-audit run --dimension-option``: dimension -> {key: value}, e.g.
    #: ``{marker-rate: {panel: [spy, chef]}}``. The audit checks them against each dimension's
    #: declared options before the model loads. None: every option at its default.
    options: dict[str, dict[str, Any]] | None = None

    @model_serializer(mode="wrap")
    def _options_only_when_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Leave ``options`` and ``judge_options`` out when unset, so sweeps written before they
        existed keep their ids."""
        data = handler(self)
        for key in ("options", "judge_options"):
            if not data.get(key):
                data.pop(key, None)
        return data


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


def read_sweep_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RhoAuditError(
            f"no sweep file {path}. The shipped sweeps are sweeps/paper-ablation.yaml, "
            "sweeps/paper-dose-response.yaml and sweeps/paper-margin.yaml in the rho-audit source tree."
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise RhoAuditError(f"cannot read sweep file {path}: {err}") from None


def parse_sweep_yaml(path: Path, text: str) -> tuple[yaml.Node, Any]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise SweepFileError(f"{yaml_error_message(path, err)}. Nothing was run.") from None
    except ValueError as err:  # a value YAML reads but Python refuses, e.g. a 5000-digit integer
        raise SweepFileError(f"{path}: a value cannot be read: {err}. Nothing was run.") from None
    if root is None or not isinstance(data, dict):
        raise SweepFileError(
            f"{path}:1: a sweep file is a mapping with at least `name:` and `grid:` "
            "(see sweeps/paper-ablation.yaml). Nothing was run."
        )
    return root, data


class Problems:
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


def check_duplicate_keys(node: yaml.Node, path: KeyPath, problems: Problems) -> None:
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
            check_duplicate_keys(value, (*path, key.value), problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            check_duplicate_keys(item, (*path, i), problems)


def validate_at(
    model: type[BaseModel],
    data: Any,
    at: KeyPath,
    problems: Problems,
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
            problems.add((*base, *loc[1:]), error_message(e, model, loc))
        return None


def error_message(error: Mapping[str, Any], model: type[BaseModel], loc: KeyPath) -> str:
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
    close = closest_name(name, known)
    hint = f"; did you mean {close!r}?" if close else ""
    return f"unknown {kind} {name!r} (known: {', '.join(known) or 'none installed'}{hint})"
