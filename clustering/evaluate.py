"""Scoring a clustering against ground-truth families."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from preprocessing.errors import ConfigError

__all__ = ["read_labels", "evaluate_labels", "matched_labels"]


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
    labelled, unused, by_suffix = _match_paths(ids, truth)
    pairs = [(i, lab) for i, lab in zip(ids, labels.tolist(), strict=True) if i in labelled]
    missing = sorted(set(ids) - set(labelled))
    matched = {"matched_by_path_end": by_suffix} if by_suffix else {}
    if len(pairs) < 2:
        return {
            "evaluated": len(pairs),
            "missing": missing,
            "not_analysed": unused,
            **matched,
            "note": "fewer than 2 labelled images: nothing to score",
        }
    pred = []
    singleton = -2
    for _, lab in pairs:
        pred.append(lab if lab >= 0 else singleton)
        if lab < 0:
            singleton -= 1
    true = [labelled[i] for i, _ in pairs]
    # here, not at import: scikit-learn costs 1.4 s to import (clustering/methods.py)
    from sklearn.metrics import (
        adjusted_rand_score,
        completeness_score,
        homogeneity_score,
        normalized_mutual_info_score,
    )

    return {
        "adjusted_rand": float(adjusted_rand_score(true, pred)),
        "nmi": float(normalized_mutual_info_score(true, pred)),
        "homogeneity": float(homogeneity_score(true, pred)),
        "completeness": float(completeness_score(true, pred)),
        "evaluated": len(pairs),
        "families": len(set(true)),
        "missing": missing,
        "not_analysed": unused,
        **matched,
    }


def matched_labels(ids: Sequence[str], truth: Mapping[str, str]) -> dict[str, str]:
    """Each analysed image's family, the labels file's paths matched to the analysis'
    ids as :func:`evaluate_labels` matches them (images it does not list are absent)."""
    return _match_paths(ids, truth)[0]


def _match_paths(
    ids: Sequence[str], truth: Mapping[str, str]
) -> tuple[dict[str, str], list[str], int]:
    """Each analysed image's family, the labels file's images not analysed, and how many
    images were matched by the end of their paths.

    An image listed under its own id is taken as it is. Otherwise it is matched
    when exactly one listed path and its id agree on their last components, one
    being the end of the other: a labels file written beside the collection
    (``images/a.jpg``) for an analysis of its ``images`` folder (``a.jpg``), or
    the other way round.
    """
    labelled = {i: truth[i] for i in ids if i in truth}
    taken = set(labelled)
    ends: dict[str, list[str]] = {}
    for key in truth:
        if key not in taken:
            parts = key.split("/")
            for k in range(len(parts)):
                ends.setdefault("/".join(parts[k:]), []).append(key)
    by_end = 0
    for image in ids:
        if image in labelled:
            continue
        parts = image.split("/")
        found = set(ends.get(image, []))
        found |= {
            end for k in range(1, len(parts)) if (end := "/".join(parts[k:])) in truth
        } - taken
        if len(found) == 1 and (key := found.pop()) not in taken:
            labelled[image] = truth[key]
            taken.add(key)
            by_end += 1
    return labelled, sorted(set(truth) - taken), by_end
