"""The checks of a sweep file's ``audit:`` block, and the vocabulary every check reads: the names
the installed plugins and TrainConfig allow. Each problem is reported at its file line before any
cell trains (an audit would refuse the same value only after training)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rho_audit.api.errors import RhoAuditError
from rho_audit.plugins import PluginHost
from rho_audit.report.splits import SPLIT_ORDER
from rho_audit.train.config import TrainConfig
from rho_audit.train.sweep.schema import (
    RESERVED_KEYS,
    AuditSettings,
    KeyPath,
    Problems,
    unknown_message,
    validate_at,
)


@dataclass(frozen=True)
class Vocabulary:
    """Names the file may use, from the installed plugins and TrainConfig."""

    trainers: dict[str, dict[str, float]]  # trainer -> its options with their defaults
    declared: dict[str, dict[str, Any]]  # trainer -> its TrainerOption declarations (ranges)
    dimensions: set[str]
    trainable: set[str]
    judges: dict[str, Any]  # judge -> its class (constructed with the file's options to check them)
    fields: set[str]
    probe_sets: dict[str, Path]  # registered probe set -> its folder
    probe_kinds: dict[str, str]  # dimension -> the kind of probes it scores
    personas: set[str]  # registered persona names
    dimension_classes: dict[str, Any]  # dimension -> its class (declared options)

    @classmethod
    def from_host(cls, host: PluginHost) -> Vocabulary:
        declared = {n: dict(getattr(reg.obj, "options", None) or {}) for n, reg in host.trainers.items()}
        return cls(
            trainers={name: _option_defaults(reg.obj) for name, reg in host.trainers.items()},
            declared=declared,
            dimensions=set(host.dimensions),
            trainable={name for name, reg in host.dimensions.items() if reg.obj.trainable},
            judges={name: reg.obj for name, reg in host.judges.items()},
            fields=set(TrainConfig.model_fields) - set(RESERVED_KEYS),
            probe_sets={name: Path(reg.obj) for name, reg in host.probe_sets.items()},
            probe_kinds={
                name: str(kind)
                for name, reg in host.dimensions.items()
                if (kind := getattr(reg.obj, "probe_kind", None))
            },
            personas=set(host.personas),
            dimension_classes={name: reg.obj for name, reg in host.dimensions.items()},
        )

    @property
    def options(self) -> set[str]:
        return {name for options in self.trainers.values() for name in options}


def _option_defaults(trainer: Any) -> dict[str, float]:
    options = getattr(trainer, "options", None) or {}
    return {name: float(getattr(opt, "default", opt)) for name, opt in options.items()}


class AuditChecks:
    """The ``audit:`` block's checks, part of the plan's expansion of a sweep file (which holds the
    merged ``audit`` values with their key paths, the vocabulary and the problems found)."""

    vocab: Vocabulary
    problems: Problems
    audit: dict[str, tuple[Any, KeyPath]]

    def _check_repeats(self, key: str, values: list[Any], at: KeyPath) -> None:
        """The expansion's: a repeat is two values that would give cells the same id."""
        raise NotImplementedError

    def _check_name(self, value: Any, at: KeyPath, kind: str, known: set[str]) -> None:
        if not isinstance(value, str) or value not in known:
            self.problems.add(at, unknown_message(kind, str(value), known))

    def _check_names(self, values: Any, at: KeyPath, kind: str, known: set[str]) -> None:
        if isinstance(values, list):
            for i, value in enumerate(values):
                self._check_name(value, (*at, i), kind, known)

    def _audit_settings(self) -> AuditSettings | None:
        values = {k: v for k, (v, _) in self.audit.items()}
        origin = {k: at for k, (_, at) in self.audit.items()}
        # Names are checked on the raw values, so a wrong type elsewhere does not hide them.
        self._check_names(
            values.get("dimensions"), origin.get("dimensions", ()), "dimension", self.vocab.dimensions
        )
        judge = values.get("judge", "keyword-refusal")
        if isinstance(judge, str) and "judge" in values:
            self._check_name(judge, origin["judge"], "judge", set(self.vocab.judges))
        if isinstance(values.get("judge_options"), dict) and judge in self.vocab.judges:
            self._check_judge_options(judge, values["judge_options"], origin["judge_options"])
        splits = self._check_splits(values.get("split"), origin.get("split", ("audit", "split")))
        if isinstance(values.get("personas"), list):
            self._check_names(values["personas"], origin["personas"], "persona", self.vocab.personas)
            self._check_repeats("persona", values["personas"], origin["personas"])
        if isinstance(values.get("probes"), list):
            for i, item in enumerate(values["probes"]):
                self._check_probes(item, (*origin["probes"], i), splits)
        if isinstance(values.get("options"), dict):
            self._check_dimension_options(values["options"], origin["options"], values.get("dimensions"))
        return validate_at(AuditSettings, values, ("audit",), self.problems, origin)

    def _check_dimension_options(self, options: dict[str, Any], at: KeyPath, audited: Any) -> None:
        """Each dimension's ``options`` against those it declares, at their lines, before any cell
        trains (the audit would refuse them only after training)."""
        for name, values in options.items():
            self._check_name(name, (*at, name), "dimension", self.vocab.dimensions)
            if isinstance(audited, list) and name in self.vocab.dimensions and name not in audited:
                self.problems.add((*at, name), f"sets options for {name!r}, which `dimensions:` leaves out")
            if name in self.vocab.dimensions and isinstance(values, dict):
                for key, problem in self.vocab.dimension_classes[name].option_problems(values):
                    self.problems.add((*at, name, key), problem)

    def _check_judge_options(self, judge: str, options: dict[str, Any], at: KeyPath) -> None:
        """Build the judge with the file's options, as the audit will, so an unknown option or a
        missing rubric is reported at its line before any cell trains. Judges read no weights and
        call nothing when built."""
        try:
            self.vocab.judges[judge](**{k: str(v) for k, v in options.items()})
        except (RhoAuditError, TypeError, ValueError) as exc:
            said = str(exc)
            # At the line of the option the message names (by key or by value), when it names one.
            where = next(
                (k for k, v in options.items() if f"option {k}" in said or repr(str(v)) in said), None
            )
            prefix = "" if f"judge {judge!r}" in said else f"judge {judge!r}: "
            self.problems.add((*at, where) if where else at, prefix + said)

    def _check_splits(self, value: Any, at: KeyPath) -> list[str]:
        """The valid split names of ``split:`` (one name or a list); problems for the others."""
        if value is None:
            return ["eval"]
        items = [(value, at)] if isinstance(value, str) else []
        if isinstance(value, list):
            items = [(v, (*at, i)) for i, v in enumerate(value)]
        good: list[str] = []
        for name, where in items:
            if not isinstance(name, str) or name not in SPLIT_ORDER:
                self.problems.add(where, unknown_message("split", str(name), SPLIT_ORDER))
            elif name in good:
                self.problems.add(where, f"repeats the split {name!r} (each split is audited once)")
            else:
                good.append(name)
        return good

    def _check_probes(self, item: Any, at: KeyPath, splits: Sequence[str]) -> None:
        """One ``probes:`` entry, SET or DIMENSION=SET, checked as ``rho-audit run --probes``
        would check it, but now, before any cell trains: the set exists, a dimension scores it,
        its kind fits that dimension, and it has probes in every audited split."""
        if not isinstance(item, str):
            return  # pydantic reports the type
        name, sep, source = (part.strip() for part in item.partition("="))
        if not sep:
            name, source = "", item.strip()
        if sep and not (name and source):
            self.problems.add(
                at, f"{item!r}: write SET or DIMENSION=SET, e.g. ood-clinical or factual=ood-clinical"
            )
            return
        if name and name not in self.vocab.dimensions:
            self.problems.add(at, unknown_message("dimension", name, self.vocab.dimensions))
            return
        folder = self.vocab.probe_sets.get(source) or Path(source).expanduser()
        if source not in self.vocab.probe_sets and not folder.is_dir():
            message = unknown_message("probe set", source, self.vocab.probe_sets)
            self.problems.add(at, f"{message}; a folder with card.yaml and probes.jsonl works too")
            return
        from rho_audit.probesets.schema import load_probe_set

        try:
            probes = load_probe_set(folder)
        except RhoAuditError as err:
            self.problems.add(at, f"probe set {source!r} cannot be read: {err}")
            return
        dimension = name or probes.card.dimension
        if not dimension:
            self.problems.add(
                at, f"probe set {source!r} names no dimension in its card; write DIMENSION={source}"
            )
        elif dimension not in self.vocab.dimensions:
            self.problems.add(
                at,
                f"probe set {source!r} is scored by dimension {dimension!r}, which is not installed "
                f"(known: {', '.join(sorted(self.vocab.dimensions))})",
            )
        elif self.vocab.probe_kinds.get(dimension, probes.kind) != probes.kind:
            self.problems.add(
                at,
                f"probe set {source!r} holds {probes.kind!r} probes but dimension {dimension!r} "
                f"scores {self.vocab.probe_kinds[dimension]!r} probes",
            )
        for split in splits:
            if split != "all" and len(probes.split(split)) == 0:
                self.problems.add(at, f"probe set {source!r} has no probes in split {split!r}")
