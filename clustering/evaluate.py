"""Scoring a clustering against ground-truth families."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from sklearn.metrics import (
    adjusted_rand_score,
    completeness_score,
    homogeneity_score,
    normalized_mutual_info_score,
)

from preprocessing.errors import ConfigError

__all__ = ["read_labels", "evaluate_labels"]


def read_labels(path: str | Path) -> dict[str, str]:
    """Read ``image,family`` rows (a header naming both columns is required).

    Raises
    ------
    ConfigError
        Unreadable file, missing columns, or an image listed twice.
    """
    p = Path(path)
    try:
        with open(p, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or not {"image", "family"} <= set(reader.fieldnames):
                raise ConfigError(f"{p}: needs a header with columns image,family")
            out: dict[str, str] = {}
            for line, row in enumerate(reader, start=2):
                image = (row["image"] or "").strip()
                if not image:
                    continue
                if image in out:
                    raise ConfigError(f"{p}: line {line}: image {image!r} listed twice")
                out[image] = (row["family"] or "").strip()
            return out
    except OSError as err:
        raise ConfigError(f"{p}: cannot read labels ({err.strerror or err})") from err


def evaluate_labels(
    ids: Sequence[str], labels: np.ndarray, truth: Mapping[str, str]
) -> dict[str, object]:
    """Adjusted Rand index, NMI, homogeneity and completeness against ``truth``.

    Only images present in both are scored; noise (-1) images count as
    singleton clusters (one noise bin would reward calling everything noise).
    """
    pairs = [(i, lab) for i, lab in zip(ids, labels.tolist(), strict=True) if i in truth]
    missing = sorted(set(ids) - set(truth))
    unused = sorted(set(truth) - set(ids))
    if len(pairs) < 2:
        return {
            "evaluated": len(pairs),
            "missing": missing,
            "not_analysed": unused,
            "note": "fewer than 2 labelled images: nothing to score",
        }
    pred = []
    singleton = -2
    for _, lab in pairs:
        pred.append(lab if lab >= 0 else singleton)
        if lab < 0:
            singleton -= 1
    true = [truth[i] for i, _ in pairs]
    return {
        "adjusted_rand": float(adjusted_rand_score(true, pred)),
        "nmi": float(normalized_mutual_info_score(true, pred)),
        "homogeneity": float(homogeneity_score(true, pred)),
        "completeness": float(completeness_score(true, pred)),
        "evaluated": len(pairs),
        "families": len(set(true)),
        "missing": missing,
        "not_analysed": unused,
    }
