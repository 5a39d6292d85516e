"""Where a YAML file stopped parsing, said the same way for sweep files, cards and train configs."""

from __future__ import annotations

from pathlib import Path


def yaml_error_message(path: Path | str, err: Exception) -> str:
    """``path:line: not valid YAML: problem`` for a ``yaml.YAMLError``, plus the line where an
    unclosed construct began (e.g. ``; while parsing a flow sequence started on line 3``).

    The caller adds what happens next (``Nothing was run.``) and raises its own error type.
    """
    mark = getattr(err, "problem_mark", None)
    where = f"{path}:{mark.line + 1}" if mark else str(path)
    problem = getattr(err, "problem", None) or str(err)
    context, context_mark = getattr(err, "context", None), getattr(err, "context_mark", None)
    if context and context_mark:
        problem += f"; {context} started on line {context_mark.line + 1}"
    return f"{where}: not valid YAML: {problem}"
