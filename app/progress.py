"""Progress bars of the command line: one tqdm bar per stage, on stderr."""

from __future__ import annotations

import sys

from tqdm import tqdm

__all__ = ["ProgressBars"]

_STAGE_LABELS = {
    "load": "loading images",
    "preprocess": "work images",
    "equalize": "equalizing",
    "align": "aligning",
    "shortlist": "shortlist",
    "clustering": "clustering",
    "report": "writing outputs",
}


class ProgressBars:
    """A ``progress(stage, done, total)`` callback drawing one bar per stage; a new
    stage closes the previous bar. Disabled, it draws nothing."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.stage: str | None = None
        self.bar: tqdm | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if stage != self.stage:
            self.close()
            label = _STAGE_LABELS.get(stage, stage.replace(":", " "))
            unit = "pair" if stage.startswith("similarity:") else "item"
            self.bar = tqdm(
                total=total, desc=label, unit=unit, file=sys.stderr, leave=True, dynamic_ncols=True
            )
            self.stage = stage
        if self.bar is None:
            return
        if self.bar.total != total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
            self.stage = None
