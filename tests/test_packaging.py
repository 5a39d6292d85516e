"""The wheel holds every module and data file the code reads: pyproject.toml lists packages and
package data by hand (the repo's folders install under other names, e.g. plugins/ as
rho_audit_plugins), and the editable install used in development hides an omission that a user's
`pip install rho-audit` would hit as an ImportError or a missing probe set."""

from __future__ import annotations

import fnmatch
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - CI runs 3.11
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parent.parent
#: Files in package folders that are documentation for the repo's readers, not read by code.
NOT_SHIPPED = {"README.md"}


def setuptools_table() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def package_dirs() -> dict[str, Path]:
    """Each listed package -> the repo folder it installs from (via package-dir)."""
    table = setuptools_table()
    roots = table["package-dir"]
    out = {}
    for package in table["packages"]:
        top, _, rest = package.partition(".")
        out[package] = ROOT / roots.get(top, top) / Path(*rest.split(".")) if rest else ROOT / roots[top]
    return out


def tracked(folder: Path) -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--", str(folder.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / f for f in listed]


def test_every_python_package_folder_is_listed():
    dirs = package_dirs()
    listed = {d.resolve() for d in dirs.values()}
    for top in {d.parts[len(ROOT.parts)] for d in dirs.values()}:
        for init in (ROOT / top).rglob("__init__.py"):
            if "__pycache__" in init.parts or not tracked(init):
                continue
            assert init.parent.resolve() in listed, (
                f"{init.parent.relative_to(ROOT)} is a package but [tool.setuptools] packages in "
                "pyproject.toml does not list it: a wheel would leave it out"
            )


def test_every_data_file_matches_a_package_data_glob():
    dirs = package_dirs()
    data = setuptools_table()["package-data"]
    missing = []
    for package, folder in dirs.items():
        subpackages = [d for p, d in dirs.items() if p.startswith(package + ".")]
        for path in tracked(folder):
            if path.suffix == ".py" or path.name in NOT_SHIPPED:
                continue
            if any(path.is_relative_to(d) for d in subpackages):
                continue  # belongs to the subpackage's own globs
            relative = path.relative_to(folder).as_posix()
            globs = data.get(package, [])
            if not any(fnmatch.fnmatch(relative, g) and relative.count("/") == g.count("/") for g in globs):
                missing.append(f"{path.relative_to(ROOT)} (package {package})")
    assert not missing, "not in any [tool.setuptools.package-data] glob:\n  " + "\n  ".join(missing)
