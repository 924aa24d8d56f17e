"""The import contract ([tool.importlinter] in pyproject.toml, drawn in docs/architecture.md) holds, and
can fail: a copy of the tree with one forbidden import is refused."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT), "--no-cache"], cwd=tree, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(tree)})


def test_the_import_contract_is_kept():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " broken" in result.stdout and "0 broken" in result.stdout


def _copy(tmp_path: Path) -> Path:
    roots = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["root_packages"]
    for name in roots:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_a_socket_in_the_pure_election_breaks_the_contract(tmp_path):
    tree = _copy(tmp_path)
    clock = tree / "elector" / "election" / "clock.py"
    clock.write_text(clock.read_text() + "\nimport socket  # I/O in the pure wing\n")
    result = _lint(tree)
    assert result.returncode != 0
    assert "The pure election does no I/O" in result.stdout and "elector.election.clock -> socket" in result.stdout


def test_the_elector_importing_the_status_view_breaks_the_contract(tmp_path):
    tree = _copy(tmp_path)
    main = tree / "elector" / "__main__.py"
    main.write_text(main.read_text() + "\nimport kubectl_elector  # the cycle the status word once hid\n")
    result = _lint(tree)
    assert result.returncode != 0 and "elector.__main__ -> kubectl_elector" in result.stdout, result.stdout


def test_the_product_importing_the_test_harness_breaks_the_contract(tmp_path):
    tree = _copy(tmp_path)
    options = tree / "webhook" / "options.py"
    options.write_text(options.read_text() + "\nimport localplane  # a test harness in the product\n")
    result = _lint(tree)
    assert result.returncode != 0 and "webhook.options -> localplane" in result.stdout, result.stdout
