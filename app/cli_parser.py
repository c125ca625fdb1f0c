"""The ``atelier`` command line's parser, built from the registries.

Each option of ``analyze`` names the setting it sets (:data:`ANALYZE_OPTIONS`),
so the configuration is built from this table (``app.cli``) and a core error
that names a setting is shown with the flag that sets it (:func:`with_flags`).
Choices and help come from the registries: metrics, clustering methods and
their criteria and linkages, alignment models, equalization measures.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from clustering import LINKAGES, METHODS, SELECTION_CRITERIA
from preprocessing.align import ALIGN_METHODS, FEATURE_MODELS, STACKREG_REFERENCES
from preprocessing.equalize import MEASURES
from similarity import METRICS
from similarity.config import DEFAULT_METRICS, FUSE_MODES

__all__ = ["ANALYZE_OPTIONS", "EXIT_USAGE", "Option", "SETTING_FLAGS", "build_parser", "with_flags"]

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse exits 2: keep, with our prefix
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"atelier: error: {message}\n")


def _word_or_count(word: str) -> Callable[[str], int | str]:
    """An argparse type: ``word`` itself, or a whole number of at least 1."""

    def parse(text: str) -> int | str:
        if text == word:
            return word
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {word!r} or a whole number, got {text!r}"
            ) from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
        return value

    return parse


_n_clusters = _word_or_count("auto")
_neighbors = _word_or_count("all")


def _weights(text: str) -> list[float] | str:
    if text.strip().lower() in FUSE_MODES:
        return text.strip().lower()
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers or one of {', '.join(FUSE_MODES)}, got {text!r}"
        ) from None


def _measures(text: str) -> list[str]:
    if text.strip().lower() == "none":
        return []
    return [part.strip() for part in text.split(",") if part.strip()]


def _listed(names: Iterable[str]) -> str:
    return ", ".join(names)


@dataclass(frozen=True)
class Option:
    """One command-line option: its flags, the setting it sets (``section.key``, or a
    top-level key; None for options the command reads itself) and argparse's keywords."""

    flags: tuple[str, ...]
    setting: str | None
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def dest(self) -> str:
        return self.kwargs.get("dest") or self.flags[0].lstrip("-").replace("-", "_")


def _method_help() -> str:
    return "; ".join(f"{name}: {m.summary}" for name, m in METHODS.items())


#: The options of ``analyze`` that set the configuration, in help order.
ANALYZE_OPTIONS: tuple[Option, ...] = (
    Option(("--metric",), "similarity.metrics", {
        "action": "append", "metavar": "NAME", "choices": list(METRICS),
        "help": f"similarity metric (repeatable): {_listed(METRICS)}; "
        f"default: {_listed(DEFAULT_METRICS)}, combined",
    }),
    Option(("--fuse",), "similarity.fuse", {
        "type": _weights, "metavar": "W1,W2,...",
        "help": "combine the metrics' matrices: 'auto' (default: the learned pair model for "
        "its metrics, else equal weights), 'learned', 'equal', one weight per --metric, or "
        "'none' (cluster the first metric's matrix)",
    }),
    Option(("--model",), "similarity.metric_params.embedding.model", {
        "metavar": "FILE.onnx",
        "help": "ONNX model of the embedding metric (nothing is downloaded)",
    }),
    Option(("--no-cache",), "similarity.cache", {
        "action": "store_const", "const": False,
        "help": "neither read nor write the on-disk feature cache",
    }),
    Option(("--cache-dir",), "similarity.cache_dir", {
        "metavar": "DIR", "help": "feature cache folder (default $ATELIER_CACHE_DIR or "
        "~/.cache/atelier)",
    }),
    Option(("--shortlist",), "similarity.shortlist", {
        "action": "store_const", "const": "on", "help": "compare only each image's nearest "
        "neighbours under a cheap global descriptor (default from 2,000 images)",
    }),
    Option(("--no-shortlist",), "similarity.shortlist", {
        "dest": "shortlist", "action": "store_const", "const": "off",
        "help": "compare every pair, however many images",
    }),
    Option(("--shortlist-k",), "similarity.shortlist_k", {
        "type": int, "metavar": "K", "help": "neighbours per image in the shortlist (20)",
    }),
    Option(("--cluster",), "clustering.method", {
        "metavar": "METHOD", "choices": list(METHODS), "help": _method_help(),
    }),
    Option(("--n-clusters",), "clustering.n_clusters", {
        "type": _n_clusters, "metavar": "K|auto", "help": "number of clusters, or auto (default)",
    }),
    Option(("--selection",), "clustering.selection", {
        "metavar": "CRITERION", "choices": list(SELECTION_CRITERIA),
        "help": "criterion choosing k with auto: " + _listed(SELECTION_CRITERIA) + " ("
        + "; ".join(f"{n}: {', '.join(m.criteria)}" for n, m in METHODS.items() if m.criteria)
        + ")",
    }),
    Option(("--linkage",), "clustering.linkage", {
        "metavar": "L", "choices": list(LINKAGES),
        "help": f"agglomerative linkage: {_listed(LINKAGES)} (ward, centroid, median need "
        "--features)",
    }),
    Option(("--threshold",), "clustering.threshold", {
        "type": float, "metavar": "S",
        "help": "cut the dendrogram at this similarity (0-1) instead of a k ("
        + _listed([n for n, m in METHODS.items() if m.cuts_threshold]) + ")",
    }),
    Option(("--neighbors",), "clustering.neighbors", {
        "type": _neighbors, "metavar": "K|all",
        "help": "spectral: each image's K most similar images make its graph, or all "
        "(default 20, chosen for the learned matrix; 5 does better on rank-fused ones)",
    }),
    Option(("--features",), "clustering.features", {
        "metavar": "F", "help": "per-image vectors for feature methods: mds, pca, "
        + _listed([n for n, m in METRICS.items() if m.vector_features]),
    }),
    Option(("--size",), "preprocess.work_size", {
        "type": int, "metavar": "PIXELS", "help": "work image side (default 256)",
    }),
    Option(("--equalize",), "preprocess.equalize", {
        "type": _measures, "metavar": "M[,M...]",
        "help": f"match {_listed(MEASURES)} across the set (comma-separated), or 'none'",
    }),
    Option(("--align",), "preprocess.align", {
        "metavar": "MODEL", "choices": list(ALIGN_METHODS),
        "help": f"{_listed(ALIGN_METHODS)} (pystackreg's motion models, or SIFT + RANSAC)",
    }),
    Option(("--reference",), "preprocess.reference", {
        "metavar": "REF", "help": f"alignment reference: {_listed(STACKREG_REFERENCES)} "
        "or an image id",
    }),
    Option(("--feature-model",), "preprocess.feature_model", {
        "metavar": "M", "choices": list(FEATURE_MODELS),
        "help": f"model of the features alignment: {_listed(FEATURE_MODELS)}",
    }),
    Option(("--seed",), "random_state", {
        "type": int, "metavar": "N", "help": "random_state for every random step",
    }),
    Option(("--workers", "--jobs"), "n_jobs", {
        "dest": "jobs", "type": int, "metavar": "N",
        "help": "worker processes of the local pool, or of --scheduler local (default: all)",
    }),
    Option(("--scheduler",), "scheduler", {
        "metavar": "ADDRESS", "help": "run on a Dask cluster: tcp://HOST:PORT of its "
        "scheduler, or 'local' for a LocalCluster on 127.0.0.1 (needs the dist extra)",
    }),
)  # fmt: skip

#: Setting -> the flag that sets it, for messages of the core (which name settings).
SETTING_FLAGS = {o.setting: o.flags[0] for o in reversed(ANALYZE_OPTIONS) if o.setting}


def with_flags(message: str) -> str:
    """``message`` with each setting it names followed by the flag that sets it."""
    names = sorted(SETTING_FLAGS, key=len, reverse=True)
    pattern = r"(?<![\w.])(" + "|".join(re.escape(n) for n in names) + r")(?![\w.])"
    return re.sub(pattern, lambda m: f"{m.group(1)} ({SETTING_FLAGS[m.group(1)]})", message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="atelier", description="Structural image-similarity analysis.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    a = sub.add_parser("analyze", help="analyse a folder of images and write a report")
    a.add_argument("input_dir", metavar="INPUT_DIR", help="folder of images (searched recursively)")
    a.add_argument("--out", required=True, metavar="OUT_DIR", help="output folder")
    shortlist = a.add_mutually_exclusive_group()
    for option in ANALYZE_OPTIONS:
        target = shortlist if option.setting == "similarity.shortlist" else a
        target.add_argument(*option.flags, **option.kwargs)
    a.add_argument("--config", metavar="FILE", help="configuration file (.toml or .json)")
    a.add_argument("--labels", metavar="FILE.csv", help="ground truth (image,family): score it")
    a.add_argument("--pdf", action="store_true", help="also write report.pdf (the pdf extra)")
    a.add_argument("--export-folders", metavar="DIR", help="one folder of originals per cluster")
    a.add_argument("--link", action="store_true", help="export symbolic links, not copies")
    a.add_argument("--no-progress", action="store_true", help="do not draw progress bars")
    a.add_argument("-v", "--verbose", action="store_true", help="log details and tracebacks")

    c = sub.add_parser("compare", help="compare two images under every metric, with evidence")
    c.add_argument("image_a", metavar="A")
    c.add_argument("image_b", metavar="B")
    c.add_argument("--out", required=True, metavar="OUT_DIR")
    c.add_argument("--align", metavar="MODEL", default="features", choices=list(ALIGN_METHODS),
                   help="how B is aligned onto A first (features; none to skip)")  # fmt: skip
    c.add_argument("--config", metavar="FILE")
    c.add_argument("--seed", type=int, metavar="N")

    q = sub.add_parser("query", help="rank reference images against a questioned image")
    q.add_argument("questioned", metavar="QUESTIONED")
    q.add_argument("--against", required=True, metavar="DIR", help="folder of reference images")
    q.add_argument("--out", required=True, metavar="OUT_DIR")
    q.add_argument("--top", type=int, default=10, metavar="K", help="references listed (10)")
    q.add_argument("--metric", action="append", metavar="NAME", choices=list(METRICS),
                   help="metrics (repeatable; default: the analysis default, fused)")  # fmt: skip
    q.add_argument("--config", metavar="FILE")
    q.add_argument("--seed", type=int, metavar="N")
    q.add_argument("--no-progress", action="store_true")

    w = sub.add_parser("app", help="start the web app")
    w.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    w.add_argument("--address", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; the app has no "
                   "authentication, so expose it only behind an authenticating proxy)")  # fmt: skip
    w.add_argument("--samples", metavar="DIR", help="folder offered by 'Load sample artworks'")
    w.add_argument("--session-cache-mb", type=float, metavar="MB",
                   help="bound on the memory all sessions' images and results may hold; the "
                   "least recently used session is released first (default 2048, or "
                   "ATELIER_SESSION_CACHE_MB)")  # fmt: skip
    w.add_argument("--session-idle-min", type=float, metavar="MIN",
                   help="release a session unused for this long (default 30, or "
                   "ATELIER_SESSION_IDLE_MIN); a closed browser's session goes after "
                   "ATELIER_SESSION_GRACE_S seconds (default 60)")  # fmt: skip
    return parser
