"""Architecture and installation checks."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parent.parent
#: Every module of the core packages, found on disk (a new module cannot be missed).
CORE_MODULES = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for pkg in ("preprocessing", "similarity", "clustering")
    for p in (ROOT / pkg).rglob("*.py")
)


def test_core_packages_import_without_streamlit():
    code = (
        "import sys\n"
        "sys.modules['streamlit'] = None  # any import of streamlit now fails\n"
        f"import importlib\nfor m in {CORE_MODULES!r}:\n    importlib.import_module(m)\n"
        "assert 'app' not in sys.modules, 'core imported app'\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_core_never_prints():
    root = ROOT
    offenders = [
        str(p)
        for pkg in ("preprocessing", "similarity", "clustering")
        for p in (root / pkg).rglob("*.py")
        if "print(" in p.read_text(encoding="utf-8")
    ]
    assert offenders == []


def test_opencv_in_use_is_the_contrib_build():
    """The contrib modules Atelier relies on must be present (see .ci/check_opencv.py)."""
    assert hasattr(cv2, "img_hash") and hasattr(cv2.img_hash, "PHash_create")
    assert hasattr(cv2, "SIFT_create")
    assert cv2.img_hash.PHash_create() is not None


def test_every_runtime_dependency_is_imported_by_runtime_code():
    """A declared runtime dependency is used at run time (else it is an optional extra)."""
    import ast
    import tomllib

    root = Path(__file__).resolve().parent.parent
    declared = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!\[; ]", d, maxsplit=1)[0].lower() for d in declared}
    module_of = {
        "scikit-image": "skimage",
        "scikit-learn": "sklearn",
        "pillow": "PIL",
        "opencv-contrib-python-headless": "cv2",
        "pyrtools": "pyrtools",
    }
    imported: set[str] = set()
    for pkg in ("app", "preprocessing", "similarity", "clustering"):
        for path in (root / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    imported |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    imported.add(node.module.split(".")[0])
    unused = sorted(n for n in names if module_of.get(n, n.replace("-", "_")) not in imported)
    assert unused == [], unused
