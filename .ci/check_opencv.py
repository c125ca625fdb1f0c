"""Check that the cv2 in use is the contrib build; repair it if the plain build won.

clustimage depends on opencv-python-headless, Atelier on the contrib build; both
write the same cv2/ folder, so whichever pip installed last wins. Uninstalling
either breaks cv2, so the repair reinstalls the contrib wheel (same pinned
version) over the top without touching dependencies.

Usage: python .ci/check_opencv.py [--repair]
Exit status 0 when cv2 has the contrib modules Atelier uses, 1 otherwise.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from importlib import metadata

REQUIRED = ("img_hash", "xfeatures2d", "ximgproc")


def missing() -> list[str]:
    for name in list(sys.modules):
        if name == "cv2" or name.startswith("cv2."):
            del sys.modules[name]
    importlib.invalidate_caches()
    try:
        cv2 = importlib.import_module("cv2")
    except ImportError as err:
        return [f"cv2 does not import ({err})"]
    return [m for m in REQUIRED if not hasattr(cv2, m)]


def main() -> int:
    gone = missing()
    if not gone:
        print("opencv check: contrib modules present")
        return 0
    print(f"opencv check: missing {', '.join(gone)}")
    if "--repair" not in sys.argv:
        return 1
    version = metadata.version("opencv-contrib-python-headless")
    subprocess.check_call(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--force-reinstall",
            f"opencv-contrib-python-headless=={version}",
        ]
    )
    gone = missing()
    print(
        "opencv check after repair: "
        + ("contrib modules present" if not gone else f"still missing {gone}")
    )
    return 0 if not gone else 1


if __name__ == "__main__":
    sys.exit(main())
