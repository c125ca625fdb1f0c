"""Static checks run with the suite: ruff (lint) and mypy (types)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *cmd], cwd=ROOT, capture_output=True, text=True)


def test_ruff_clean():
    out = run("ruff", "check", ".")
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_clean():
    out = run("mypy")
    assert out.returncode == 0, out.stdout + out.stderr


def _functions(path: Path):
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def test_functions_stay_short_or_say_why():
    """No function of the core or the app over 80 lines, except where a comment says why
    (and then its code, without the docstring, is still under 80)."""
    import ast

    long = []
    for root in ("app", "clustering", "similarity", "preprocessing"):
        for path in sorted((ROOT / root).rglob("*.py")):
            lines = path.read_text(encoding="utf-8").splitlines()
            for fn in _functions(path):
                length = fn.end_lineno - fn.lineno + 1
                if length <= 80:
                    continue
                first = fn.body[0]
                doc = (
                    first.end_lineno - first.lineno + 1
                    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    else 0
                )
                said = any("# long:" in line for line in lines[fn.lineno - 1 : fn.end_lineno])
                if not said or length - doc > 80:
                    long.append(f"{path.relative_to(ROOT)}:{fn.lineno} {fn.name} ({length})")
    assert not long, long


def test_cli_module_is_small():
    assert len((ROOT / "app" / "cli.py").read_text(encoding="utf-8").splitlines()) < 400
