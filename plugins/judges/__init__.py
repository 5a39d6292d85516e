"""Built-in judges, one module (and one entry point) each; ``rubrics/`` holds the LLM judges' rubrics."""

from pathlib import Path

#: The built-in rubrics (Jinja templates), shared by the claude and local judges.
RUBRIC_DIR = Path(__file__).parent / "rubrics"
