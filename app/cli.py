"""The ``atelier`` command."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import NoReturn

from tqdm import tqdm

from clustering import read_labels
from preprocessing import (
    AlignmentError,
    AtelierError,
    ClusteringError,
    ConfigError,
    ImageLoadError,
    NoUsableImageError,
)
from similarity.config import DEFAULT_METRICS, FUSE_MODES

from .config import AnalysisConfig, load_config

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2

_STAGE_LABELS = {
    "load": "loading images",
    "preprocess": "work images",
    "equalize": "equalizing",
    "align": "aligning",
    "shortlist": "shortlist",
    "clustering": "clustering",
    "report": "writing outputs",
}


class _Bars:
    """One tqdm bar per stage, on stderr; a new stage closes the previous bar."""

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


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse exits 2: keep, with our prefix
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"atelier: error: {message}\n")


def _n_clusters(text: str) -> int | str:
    if text == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto' or a whole number, got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _weights(text: str) -> tuple[float, ...] | str:
    if text.strip().lower() in FUSE_MODES:
        return text.strip().lower()
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers or one of {', '.join(FUSE_MODES)}, got {text!r}"
        ) from None


def _measures(text: str) -> tuple[str, ...]:
    if text.strip().lower() == "none":
        return ()
    return tuple(part.strip() for part in text.split(",") if part.strip())


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="atelier", description="Structural image-similarity analysis.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    a = sub.add_parser("analyze", help="analyse a folder of images and write a report")
    a.add_argument("input_dir", metavar="INPUT_DIR", help="folder of images (searched recursively)")
    a.add_argument("--out", required=True, metavar="OUT_DIR", help="output folder")
    a.add_argument(
        "--metric",
        action="append",
        metavar="NAME",
        help=f"similarity metric (repeatable); default: {', '.join(DEFAULT_METRICS)}, combined",
    )
    a.add_argument(
        "--fuse",
        type=_weights,
        metavar="W1,W2,...",
        help="combine the metrics' matrices: 'auto' (default: the learned pair model for "
        "contour + sift, else equal weights), 'learned', 'equal', these weights (one per "
        "--metric), or 'none' (cluster the first metric's matrix)",
    )
    a.add_argument(
        "--model",
        metavar="FILE.onnx",
        help="ONNX model file for the embedding metric (nothing is downloaded)",
    )
    a.add_argument(
        "--no-cache", action="store_true", help="neither read nor write the on-disk feature cache"
    )
    a.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="feature cache folder (default $ATELIER_CACHE_DIR or ~/.cache/atelier)",
    )
    short = a.add_mutually_exclusive_group()
    short.add_argument(
        "--shortlist",
        dest="shortlist",
        action="store_const",
        const="on",
        help="compare only each image's nearest neighbours under a cheap global descriptor "
        "(default from 2,000 images)",
    )
    short.add_argument(
        "--no-shortlist",
        dest="shortlist",
        action="store_const",
        const="off",
        help="compare every pair, however many images",
    )
    a.add_argument(
        "--shortlist-k", type=int, metavar="K", help="neighbours per image in the shortlist (20)"
    )
    a.add_argument(
        "--cluster",
        metavar="METHOD",
        help="spectral, affinity (on similarities), agglomerative, dbscan, hdbscan "
        "(on distances or features), kmeans (on features)",
    )
    a.add_argument(
        "--n-clusters",
        type=_n_clusters,
        metavar="K|auto",
        help="number of clusters, or auto (default)",
    )
    a.add_argument(
        "--selection",
        metavar="CRITERION",
        help="criterion choosing k with auto: silhouette (default), davies-bouldin, "
        "calinski-harabasz, derivative (agglomerative)",
    )
    a.add_argument(
        "--linkage",
        metavar="L",
        help="agglomerative linkage: average (default), complete, single, weighted; "
        "ward, centroid, median need --features",
    )
    a.add_argument(
        "--threshold",
        type=float,
        metavar="S",
        help="agglomerative: cut the dendrogram at this similarity (0-1) instead of a k",
    )
    a.add_argument(
        "--features",
        metavar="F",
        help="per-image vectors for feature methods: mds, pca, hog, phash, ahash, "
        "blockhash, mhhash, embedding",
    )
    a.add_argument(
        "--labels",
        metavar="FILE.csv",
        help="ground truth (image,family): score the clustering (ARI, NMI, ...)",
    )
    a.add_argument(
        "--pdf", action="store_true", help="also write report.pdf (needs the pdf extra: WeasyPrint)"
    )
    a.add_argument(
        "--export-folders",
        metavar="DIR",
        help="write one folder per cluster with copies of the originals",
    )
    a.add_argument(
        "--link",
        action="store_true",
        help="with --export-folders: symbolic links instead of copies",
    )
    a.add_argument("--size", type=int, metavar="PIXELS", help="work image side (default 256)")
    a.add_argument(
        "--equalize",
        type=_measures,
        metavar="M[,M...]",
        help="match brightness, contrast and/or sharpness across the set "
        "(comma-separated), or 'none'",
    )
    a.add_argument(
        "--align",
        metavar="MODEL",
        help="none, translation, rigid, scaled-rotation, affine, bilinear (pystackreg) "
        "or features (SIFT + RANSAC)",
    )
    a.add_argument(
        "--reference",
        metavar="REF",
        help="alignment reference: auto (default), mean, first, previous or an image id",
    )
    a.add_argument(
        "--feature-model",
        metavar="M",
        help="model of the feature path: similarity, affine (default), homography",
    )
    a.add_argument("--config", metavar="FILE", help="configuration file (.toml or .json)")
    a.add_argument("--seed", type=int, metavar="N", help="random_state for every random step")
    a.add_argument(
        "--workers",
        "--jobs",
        dest="jobs",
        type=int,
        metavar="N",
        help="worker processes of the local pool, or of --scheduler local (default: all cores)",
    )
    a.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on a Dask cluster: tcp://HOST:PORT of its scheduler, or 'local' to start "
        "a LocalCluster on 127.0.0.1 with Dask's dashboard (needs the dist extra)",
    )
    a.add_argument("--no-progress", action="store_true", help="do not draw progress bars")
    a.add_argument("-v", "--verbose", action="store_true", help="log details and tracebacks")

    c = sub.add_parser("compare", help="compare two images under every metric, with evidence")
    c.add_argument("image_a", metavar="A")
    c.add_argument("image_b", metavar="B")
    c.add_argument("--out", required=True, metavar="OUT_DIR")
    c.add_argument(
        "--align",
        metavar="MODEL",
        default="features",
        help="how B is aligned onto A first (default features; none to skip)",
    )
    c.add_argument("--config", metavar="FILE")
    c.add_argument("--seed", type=int, metavar="N")

    q = sub.add_parser("query", help="rank reference images against a questioned image")
    q.add_argument("questioned", metavar="QUESTIONED")
    q.add_argument("--against", required=True, metavar="DIR", help="folder of reference images")
    q.add_argument("--out", required=True, metavar="OUT_DIR")
    q.add_argument("--top", type=int, default=10, metavar="K", help="references listed (10)")
    q.add_argument(
        "--metric",
        action="append",
        metavar="NAME",
        help="metrics (repeatable; default: the analysis default, fused)",
    )
    q.add_argument("--config", metavar="FILE")
    q.add_argument("--seed", type=int, metavar="N")
    q.add_argument("--no-progress", action="store_true")

    w = sub.add_parser("app", help="start the web app")
    w.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    w.add_argument(
        "--address",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1: this machine only; the app has no "
        "authentication, so expose it only behind an authenticating proxy)",
    )
    w.add_argument("--samples", metavar="DIR", help="folder offered by 'Load sample artworks'")
    return parser


def _config_from_args(args: argparse.Namespace) -> AnalysisConfig:
    """The configuration file (if any) with the command line's flags laid over it."""
    config = AnalysisConfig()
    clustering = {
        key: value
        for key, value in {
            "method": args.cluster,
            "n_clusters": args.n_clusters,
            "selection": args.selection,
            "linkage": args.linkage,
            "threshold": args.threshold,
            "features": args.features,
        }.items()
        if value is not None
    }
    changes: dict[str, object] = {}
    if clustering:
        changes["clustering"] = clustering
    similarity: dict[str, object] = {}
    if args.metric:
        similarity["metrics"] = list(dict.fromkeys(args.metric))
    if args.fuse is not None:
        similarity["fuse"] = args.fuse if isinstance(args.fuse, str) else list(args.fuse)
    if args.model is not None:
        params = {k: dict(v) for k, v in config.similarity.metric_params.items()}
        params.setdefault("embedding", {})["model"] = args.model
        similarity["metric_params"] = params
    if args.no_cache:
        similarity["cache"] = False
    if args.cache_dir is not None:
        similarity["cache_dir"] = args.cache_dir
    if getattr(args, "shortlist", None) is not None:
        similarity["shortlist"] = args.shortlist
    if getattr(args, "shortlist_k", None) is not None:
        similarity["shortlist_k"] = args.shortlist_k
    if similarity:
        changes["similarity"] = similarity
    preprocess = {
        key: value
        for key, value in {
            "work_size": args.size,
            "equalize": args.equalize,
            "align": args.align,
            "reference": args.reference,
            "feature_model": args.feature_model,
        }.items()
        if value is not None
    }
    if preprocess:
        changes["preprocess"] = preprocess
    if args.seed is not None:
        changes["random_state"] = args.seed
    if args.jobs is not None:
        changes["n_jobs"] = args.jobs
    if getattr(args, "scheduler", None) is not None:
        changes["scheduler"] = args.scheduler
    if args.config:
        return load_config(args.config, changes)
    return config.replace(**changes) if changes else config


def _unwritable(out_dir: Path) -> str | None:
    """Why outputs cannot be written in ``out_dir`` (created if missing), or None.

    Checked before the analysis, so that a read-only or missing destination is
    reported at once, not after the work."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".atelier-probe.", suffix=".part"):
            pass
    except OSError as err:
        return f"{err.strerror or err}" + (f" ({err.filename})" if err.filename else "")
    return None


def _analyze(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from preprocessing.parallel import open_executor

    from .export import export_folders
    from .outputs import write_outputs
    from .pipeline import run_analysis

    try:
        config = _config_from_args(args)
    except ConfigError as err:
        print(f"atelier: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    labels = None
    if args.labels:
        try:
            labels = read_labels(args.labels)
        except ConfigError as err:
            print(f"atelier: error: {err}", file=sys.stderr)
            return EXIT_USAGE
    input_dir = Path(args.input_dir)
    if not input_dir.is_dir():
        print(f"atelier: error: {input_dir}: not a folder", file=sys.stderr)
        return EXIT_USAGE
    out_dir = Path(args.out)
    if out_dir.resolve() == input_dir.resolve():
        print("atelier: error: --out must not be the input folder", file=sys.stderr)
        return EXIT_USAGE
    problem = _unwritable(out_dir)
    if problem:
        print(f"atelier: error: cannot write the outputs in {out_dir}: {problem}", file=sys.stderr)
        return EXIT_INTERNAL
    bars = _Bars(enabled=not args.no_progress)
    t0 = time.perf_counter()
    writing = False
    try:
        with (
            open_executor(config.scheduler, config.n_jobs)
            if config.scheduler
            else nullcontext() as compute
        ):
            if compute is not None:
                print(
                    f"Dask: {compute.workers} worker(s) at {compute.scheduler}; "
                    f"dashboard {compute.dashboard}",
                    file=sys.stderr,
                )
            result = run_analysis(input_dir, config, progress=bars, labels=labels, compute=compute)
        writing = True
        write_outputs(
            result, out_dir, extra={"command": ["atelier", *argv]}, progress=bars, pdf=args.pdf
        )
        if args.export_folders:
            export_folders(result, args.export_folders, link=args.link)
    except (
        NoUsableImageError,
        ImageLoadError,
        ConfigError,
        AlignmentError,
        ClusteringError,
    ) as err:
        # the input or the options cannot be used: a usage error, said plainly
        bars.close()
        print(f"atelier: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except AtelierError as err:
        bars.close()
        print(f"atelier: error: {err}", file=sys.stderr)
        return EXIT_INTERNAL
    except OSError as err:
        # the disk filled up or the folder became unwritable while writing: every file
        # is written whole or not at all, so what is there is complete
        bars.close()
        where = f" ({err.filename})" if err.filename else ""
        what = f"cannot write the outputs in {out_dir}: " if writing else ""
        done = "; files already written are complete" if writing else ""
        print(f"atelier: error: {what}{err.strerror or err}{where}{done}", file=sys.stderr)
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        bars.close()
        print("atelier: interrupted; outputs already written are complete", file=sys.stderr)
        return 130
    bars.close()
    c = result.clustering
    skipped = len(result.images.skipped)
    print(
        f"{len(result.images)} image(s) analysed, {skipped} skipped; "
        f"{c.k} cluster(s) by {c.method} on {result.clustering_metric}; "
        f"{time.perf_counter() - t0:.1f} s; outputs in {out_dir}"
    )
    for s in result.images.skipped:
        print(f"  skipped {s.path}: {s.reason}")
    if result.evaluation is not None and "adjusted_rand" in result.evaluation:
        ev = result.evaluation
        print(
            f"against {args.labels}: adjusted Rand index {ev['adjusted_rand']:.3f}, "
            f"NMI {ev['nmi']:.3f} ({ev['evaluated']} labelled images)"
        )
    return EXIT_OK


def default_samples() -> Path:
    """The bundled sample artworks (repository checkout), or ATELIER_SAMPLES."""
    env = os.environ.get("ATELIER_SAMPLES")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "sample_artworks"


def _app(args: argparse.Namespace) -> int:
    script = Path(__file__).resolve().parent / "web" / "main.py"
    env = dict(os.environ)
    env["ATELIER_SAMPLES"] = str(
        Path(args.samples).resolve() if args.samples else default_samples()
    )
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(script),
        "--server.address",
        args.address,
        "--server.port",
        str(args.port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--global.developmentMode",
        "false",
        "--client.toolbarMode",
        "viewer",
    ]
    print(f"Atelier web app on http://{args.address}:{args.port} (Ctrl+C to stop)", flush=True)
    server = subprocess.Popen(cmd, env=env)

    def stop(signum: int, frame: object) -> None:
        # a service manager's SIGTERM must reach the server, not only this wrapper
        server.terminate()

    signal.signal(signal.SIGTERM, stop)
    try:
        return server.wait()
    except KeyboardInterrupt:
        server.terminate()
        server.wait()
        return EXIT_OK


def _forensic(args: argparse.Namespace) -> int:
    from .forensic import compare, query, write_compare, write_query

    changes: dict[str, object] = {}
    if args.seed is not None:
        changes["random_state"] = args.seed
    if args.command == "compare":
        changes["preprocess"] = {"align": args.align, "reference": "first"}
    elif args.metric:
        changes["similarity"] = {"metrics": list(dict.fromkeys(args.metric))}
    try:
        config = (
            load_config(args.config, changes)
            if args.config
            else (AnalysisConfig().replace(**changes) if changes else AnalysisConfig())
        )
        if args.command == "compare":
            result = compare(args.image_a, args.image_b, config)
            write_compare(result, args.out)
            for name, value in result.scores.items():
                print(f"{name:<12} {value:.4f}")
        else:
            if args.top < 1:
                print("atelier: error: --top must be at least 1", file=sys.stderr)
                return EXIT_USAGE
            bars = _Bars(enabled=not args.no_progress)
            qres = query(args.questioned, args.against, config, top=args.top, progress=bars)
            bars.close()
            write_query(qres, args.out)
            key = "fused" if "fused" in qres.matrices else config.similarity.metrics[0]
            for row in qres.ranking:
                print(
                    f"{row['rank']:>3}  {row[key]:.4f}  p={row[key + '_p_value']:.4f}  "
                    f"{row['reference']}"
                )
    except (NoUsableImageError, ImageLoadError, ConfigError, AlignmentError) as err:
        print(f"atelier: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except AtelierError as err:
        print(f"atelier: error: {err}", file=sys.stderr)
        return EXIT_INTERNAL
    print(f"outputs in {args.out}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from .versions import atelier_version

        print(f"atelier {atelier_version()}")
        return EXIT_OK
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "analyze":
            return _analyze(args, argv)
        if args.command in ("compare", "query"):
            return _forensic(args)
        return _app(args)
    except Exception as err:  # last resort: no traceback unless asked
        if getattr(args, "verbose", False):
            raise
        print(
            f"atelier: internal error: {type(err).__name__}: {err} (rerun with -v for details)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
