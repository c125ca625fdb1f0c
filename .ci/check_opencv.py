"""Check that the cv2 in use is the contrib build and works; repair it if the plain build won.

Atelier needs OpenCV's contrib build (``cv2.img_hash``). The optional
``reference`` extra installs clustimage, which depends on the plain
``opencv-python-headless``: both distributions write the same ``cv2/`` folder,
so whichever pip installed last wins. The plain build leaves the contrib
build's typing-stub folders (``cv2/img_hash/``) behind, so ``cv2.img_hash``
may still *import* while its classes are gone: this check therefore builds
every object Atelier uses and runs it on a small image. The repair reinstalls
the contrib wheel (same pinned version) over the top without touching
dependencies; uninstalling either distribution would break ``cv2``.

Usage: python .ci/check_opencv.py [--repair] [--single]

``--single``: also require exactly one installed distribution providing
``cv2`` (the runtime install, without the reference extra).
Exit status 0 when cv2 works as Atelier needs, 1 otherwise.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from importlib import metadata

CONTRIB = "opencv-contrib-python-headless"


def providers() -> list[str]:
    """Installed distributions that write ``cv2/__init__.py``."""
    out = []
    for dist in metadata.distributions():
        files = dist.files or []
        if any(str(f).replace("\\", "/") == "cv2/__init__.py" for f in files):
            out.append(f"{dist.metadata['Name']}=={dist.version}")
    return sorted(out)


def problems() -> list[str]:
    """What Atelier uses of cv2 and does not work (empty when all works), checked in a
    fresh interpreter: a loaded cv2 extension cannot be reloaded after a repair."""
    probe = subprocess.run(
        [sys.executable, __file__, "--probe"], capture_output=True, text=True, check=False
    )
    if probe.returncode == 0:
        return []
    return [line for line in probe.stdout.splitlines() if line] or [probe.stderr.strip()]


def _probe() -> int:
    """Build and run every cv2 object Atelier uses; print each failure on a line."""
    failed = _failures()
    for line in failed:
        print(line)
    return 1 if failed else 0


def _failures() -> list[str]:
    try:
        cv2 = importlib.import_module("cv2")
        import numpy as np
    except ImportError as err:
        return [f"cv2 does not import ({err})"]
    image = (np.arange(64 * 64, dtype=np.uint8).reshape(64, 64) * 7) % 251
    checks = {
        "SIFT": lambda: cv2.SIFT_create().detectAndCompute(image, None),
        "img_hash.PHash": lambda: cv2.img_hash.PHash_create().compute(image),
        "img_hash.AverageHash": lambda: cv2.img_hash.AverageHash_create().compute(image),
        "img_hash.BlockMeanHash": lambda: cv2.img_hash.BlockMeanHash_create().compute(image),
        "img_hash.MarrHildrethHash": lambda: cv2.img_hash.MarrHildrethHash_create().compute(image),
    }
    failed = []
    for name, run in checks.items():
        try:
            run()
        except Exception as err:  # noqa: BLE001 - any failure means the build is wrong
            failed.append(f"cv2.{name} ({type(err).__name__}: {err})")
    return failed


def main() -> int:
    if "--probe" in sys.argv:
        return _probe()
    found = providers()
    print(f"opencv check: cv2 provided by {', '.join(found) or 'nothing'}")
    gone = problems()
    if gone and "--repair" in sys.argv:
        print(f"opencv check: not working: {'; '.join(gone)}; reinstalling {CONTRIB}")
        version = metadata.version(CONTRIB)
        subprocess.check_call(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
             "--force-reinstall", f"{CONTRIB}=={version}"]
        )  # fmt: skip
        gone = problems()
    if gone:
        print(f"opencv check: FAILED: {'; '.join(gone)}")
        return 1
    print("opencv check: SIFT and img_hash work")
    if "--single" in sys.argv and len(found) != 1:
        print(f"opencv check: FAILED: expected one cv2 provider, found {len(found)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
