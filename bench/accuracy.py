"""Accuracy that generalises: choose on the development half, report on the held-out half.

    .venv/bin/python bench/accuracy.py             # every set, three draws (about 20 min here)
    .venv/bin/python bench/accuracy.py --draws 1   # one draw of each set
    .venv/bin/python bench/accuracy.py --quick     # a small subset (the test suite's)
    .venv/bin/python bench/accuracy.py --offline   # never download the real paintings
    .venv/bin/python bench/accuracy.py --confirm 13 # after the choice: the default on new sets

Sets: ``tests/benchsets.py`` (six recipes, each made for the development half
and, from other sources, for the held-out half), plus the 11 real Raphael
copies (``app.paintings``), downloaded once into the cache on this script's
request (say ``--offline`` to skip them). Each recipe is drawn three times
(``DRAW_SEEDS``: new works' order, copies, crops and photographs each time):
one draw of a recipe of 16 families moves the adjusted Rand index by more
than the candidates differ, so a choice read from one draw is a choice of
noise.

Every candidate (a similarity, a way to combine similarities, a clustering
method; k always automatic) is scored by the adjusted Rand index against the
families (noise counts as one family per image), on every set of every draw.
A recipe's score is its mean over the draws. The candidate chosen is the one
with the best worst development recipe, then the best development mean (on an
exact tie, the shipped clustering method),
printed over every candidate and over the options the pipeline offers
(not ``PIPELINE_LACKS``, nor the merge after clustering, ``MERGE_AT``); the
held-out half is printed for every candidate (its recipes' means and its
worst single set) but never read by the choice. The pair models are fitted
on the development sets of every draw.
Baselines: the reference tool's naive path (an SSIM or SIFT matrix, spectral
clustering, k by a silhouette computed on the similarities) and clustimage's
own pipeline as its users run it, and clusteval's choice of k on Atelier's
features (MDS of the default matrix), when the reference extra is installed.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "tests"))  # the set generator

from benchsets import LabelledSet, benchmark_sets  # noqa: E402

from app.config import AnalysisConfig  # noqa: E402
from app.paintings import PaintingsUnavailable, fetch_paintings  # noqa: E402
from app.pipeline import run_analysis  # noqa: E402
from clustering import (  # noqa: E402
    ClusteringConfig,
    classical_mds,
    cluster,
    evaluate_labels,
    read_labels,
)
from preprocessing import ImageSet, load_folder  # noqa: E402
from similarity import SimilarityMatrix, fuse  # noqa: E402
from similarity.fusion import local_scaling  # noqa: E402
from similarity.pairmodel import PairModel, choose_c, fit_pair_model  # noqa: E402

#: matrix name -> (metric, parameters). Earlier rounds also measured the contour test
#: without a keypoint budget, at 150 keypoints, at two blurs, without the mirror, and SIFT
#: at 150 keypoints (docs/accuracy.md keeps those rounds' output); settled, not re-run.
BASE = {
    "contour": ("contour", {}),  # its defaults: blur 4 px, mirror, keypoints in faint images
    "sift": ("sift", {}),
    "cw-ssim": ("cw-ssim", {"first_scale": 0, "height": 3}),
    "ssim": ("ssim", {}),
}

#: the seeds of the draws: the benchmark's own first, then two more (``--draws``)
DRAW_SEEDS = (2026, 7, 11)

Combo = Callable[[dict[str, SimilarityMatrix]], SimilarityMatrix]

COMBOS: dict[str, Combo] = {
    "contour": lambda m: m["contour"],
    "sift": lambda m: m["sift"],
    "cw-ssim": lambda m: m["cw-ssim"],
    "rank(sift,cw-ssim)": lambda m: fuse([m["sift"], m["cw-ssim"]]),
    "rank(contour,sift)": lambda m: fuse([m["contour"], m["sift"]]),
    "rank(contour,sift,cw-ssim)": lambda m: fuse([m["contour"], m["sift"], m["cw-ssim"]]),
    "ls(contour)": lambda m: local_scaling(m["contour"]),
    "ls(rank(contour,sift))": lambda m: local_scaling(fuse([m["contour"], m["sift"]])),
}

#: combinations the pipeline does not offer (AnalysisConfig cannot express them): measured
#: for comparison, not candidates for the shipped default
PIPELINE_LACKS = ("ls(",)

#: a step after the clustering, measured and not offered by the pipeline: clusters whose
#: mean probability of the same template (the pair model's matrix) is at least this are
#: merged, closest first (``merge_close``). 0.5 is the model's own decision point (more
#: likely the same template than not), fixed before it was measured, not tuned
MERGE_AT = 0.5
MERGED = "+merge"

#: pair classifiers fitted on the development half: name -> metrics
PAIR_MODELS = {
    "learned(contour,sift,cw-ssim)": ("contour", "sift", "cw-ssim"),
    "learned(contour,sift)": ("contour", "sift"),
    "learned(contour)": ("contour",),
}

METHODS: dict[str, dict[str, object]] = {
    "hdbscan": {"method": "hdbscan"},
    "agglomerative@0.5": {"method": "agglomerative", "threshold": 0.5},
    "spectral-5nn": {"method": "spectral", "neighbors": 5},
    "spectral-10nn": {"method": "spectral", "neighbors": 10},
    "spectral-20nn": {"method": "spectral", "neighbors": 20},
    "spectral-all-pairs": {"method": "spectral", "neighbors": None},
    "agglomerative": {"method": "agglomerative"},
    "affinity": {"method": "affinity"},
}


def matrices_for(
    images: ImageSet, cache_dir: str | None, skip: tuple[str, ...] = ()
) -> dict[str, SimilarityMatrix]:
    """Every base matrix of one set but ``skip`` (features from the disk cache when there)."""
    out: dict[str, SimilarityMatrix] = {}
    for name, (metric, params) in BASE.items():
        if name in skip:
            continue
        cfg = AnalysisConfig().replace(
            similarity={
                "metrics": [metric],
                "metric_params": {metric: params},
                "fuse": "none",
                "cache_dir": cache_dir,
            }
        )
        out[name] = run_analysis(images, cfg).matrices[metric]
    return out


def _applier(model: PairModel, names: tuple[str, ...]) -> Combo:
    def apply(mats: dict[str, SimilarityMatrix]) -> SimilarityMatrix:
        return model.apply({BASE[n][0]: mats[n] for n in names})

    return apply


def naive_reference(matrix: SimilarityMatrix, seed: int) -> np.ndarray:
    """The reference tool's path: spectral clustering, k by a silhouette on *similarities*."""
    from sklearn.cluster import SpectralClustering
    from sklearn.metrics import silhouette_score

    s = matrix.values
    best, labels = -np.inf, np.zeros(len(s), int)
    for k in range(2, min(25, len(s) - 1) + 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lab = SpectralClustering(k, affinity="precomputed", random_state=seed).fit_predict(s)
            # the bug: similarities given where distances are expected (diagonal zeroed so
            # scikit-learn accepts them, as the reference tool's callers must)
            score = silhouette_score(s - np.diag(np.diag(s)), lab, metric="precomputed")
        if score > best:
            best, labels = score, lab
    return labels


def clustimage_labels(images: ImageSet) -> np.ndarray | None:
    """clustimage's default pipeline (PCA features, agglomerative, silhouette) on the set."""
    try:
        from clustimage import Clustimage
    except ImportError:
        return None
    import cv2

    rows = []
    for rec in images:
        gray = cv2.cvtColor(np.asarray(rec.pixels, np.float32), cv2.COLOR_RGB2GRAY)
        rows.append(cv2.resize(gray, (128, 128), interpolation=cv2.INTER_AREA).ravel() * 255)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            cl = Clustimage(method="pca", verbose=50, use_image_cache=False)
            result = cl.fit_transform(np.asarray(rows, np.float64))
        except Exception:  # noqa: BLE001 - a reference tool's own failure is a result
            return None
    return np.asarray(result["labels"], int)


def clusteval_labels(similarity: np.ndarray) -> np.ndarray | None:
    """clusteval's choice of k (agglomerative, silhouette, k = 2..25) on Atelier's features:
    the classical MDS coordinates of the default matrix's distances."""
    try:
        from clusteval import clusteval
    except ImportError:
        return None
    features = classical_mds(1.0 - similarity)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ce = clusteval(
                cluster="agglomerative", evaluate="silhouette", min_clust=2,
                max_clust=min(25, len(features) - 1), verbose="warning",
            )  # fmt: skip
            return np.asarray(ce.fit(features)["labx"], int)
        except Exception:  # noqa: BLE001 - a reference tool's own failure is a result
            return None


def merge_close(similarity: np.ndarray, labels: np.ndarray, threshold: float) -> np.ndarray:
    """``labels`` with the two clusters of the highest mean similarity between them merged,
    again and again while that mean is at least ``threshold`` (average linkage, from the
    clustering's own clusters)."""
    labels = np.asarray(labels).copy()
    while True:
        names = np.unique(labels)
        members = [labels == c for c in names]
        best, pair = threshold, None
        for a in range(len(names)):
            for b in range(a + 1, len(names)):
                mean = float(similarity[np.ix_(members[a], members[b])].mean())
                if mean >= best:
                    best, pair = mean, (names[a], names[b])
        if pair is None:
            return labels
        labels[labels == pair[1]] = pair[0]


def default_score(images: ImageSet, truth: dict[str, str], cache_dir: str | None) -> float:
    """The adjusted Rand index of Atelier's shipped default (``AnalysisConfig()``), as
    ``atelier analyze --labels`` and the web app compute it."""
    config = AnalysisConfig().replace(similarity={"cache_dir": cache_dir})
    evaluation = run_analysis(images, config, labels=truth).evaluation or {}
    return float(evaluation["adjusted_rand"])


def ari(ids: tuple[str, ...], labels: np.ndarray, truth: dict[str, str]) -> float:
    return float(evaluate_labels(ids, np.asarray(labels), truth)["adjusted_rand"])


def load_paintings(args: argparse.Namespace) -> list[tuple[str, np.ndarray]] | None:
    """The real paintings' photographs (downloaded once into the cache), or None."""
    paintings = None
    if args.offline:
        print("real paintings: skipped (--offline)")
    else:
        try:
            folder = fetch_paintings(args.cache_dir)
            import cv2

            paintings = [
                (p.name, cv2.imread(str(p), cv2.IMREAD_COLOR)[:, :, ::-1])
                for p in sorted(folder.glob("*.jpg"), key=lambda p: int(p.name.split("_")[0]))
            ]
            print(f"real paintings: {len(paintings)} photographs from {folder}")
        except PaintingsUnavailable as err:
            print(f"real paintings: skipped, {err}")
    return paintings


def load_sets(
    args: argparse.Namespace, seed: int, paintings: list[tuple[str, np.ndarray]] | None
) -> list[LabelledSet]:
    recipes = ("workshop", "rehand", "prints") if args.quick else None
    return list(benchmark_sets(paintings=paintings, recipes=recipes, quick=args.quick, seed=seed))


def confirm(args: argparse.Namespace) -> int:
    """Score the shipped default on sets made anew (a seed none of the draws uses), both
    halves, after every choice was made: nothing here was read by the choice. Beside it,
    local scaling of the contour matrix + affinity propagation, for comparison."""
    t0 = time.perf_counter()
    paintings = load_paintings(args)
    sets = load_sets(args, args.confirm, paintings)
    print(
        f"confirmation, seed {args.confirm}: {len(sets)} sets, "
        f"{sum(len(s.images) for s in sets)} images (each half's sources, new copies)"
    )
    rows = []
    cfg = AnalysisConfig().replace(
        similarity={"metrics": ["contour"], "fuse": "none", "cache_dir": args.cache_dir}
    )
    for s in sets:
        default = default_score(s.images, s.truth, args.cache_dir)
        contour = run_analysis(s.images, cfg).matrices["contour"]
        lab = cluster(local_scaling(contour).values, ClusteringConfig(method="affinity")).labels
        rows.append((s.name, len(s.images), default, ari(contour.ids, lab, s.truth)))
        print(
            f"  {s.name:<20}{len(s.images):>5} images  default {default:.3f}  "
            f"ls(contour) + affinity {rows[-1][3]:.3f}",
            flush=True,
        )
    worst = min(r[2] for r in rows)
    print(f"criterion (the default at 0.95 on every set): {'met' if worst >= 0.95 else 'not met'}")
    print(
        f"worst: default {worst:.3f}, ls(contour) + affinity "
        f"{min(r[3] for r in rows):.3f}; measured in {time.perf_counter() - t0:.0f} s"
    )
    return 0


#: (set name, draw) -> (half, images, matrices, truth)
Computed = dict[tuple[str, int], tuple[str, ImageSet, dict[str, SimilarityMatrix], dict[str, str]]]
#: (combination, method) -> {(set name, draw): adjusted Rand index}
Scores = dict[tuple[str, str], dict[tuple[str, int], float]]


def compute_all(args: argparse.Namespace, t0: float) -> Computed:
    """Every base matrix of every set of every draw, and the samples (first draw)."""
    paintings = load_paintings(args)
    computed: Computed = {}
    for draw, seed in enumerate(DRAW_SEEDS[: args.draws]):
        sets = load_sets(args, seed, paintings)
        all_sets = [(s.name, s.half, s.images, s.truth) for s in sets]
        if draw == 0:
            samples = load_folder(ROOT / "sample_artworks")
            truth = read_labels(ROOT / "sample_artworks" / "families.csv")
            all_sets.append(("samples", "samples", samples, truth))
        print(
            f"draw {draw + 1} (seed {seed}): {len(sets)} sets, "
            f"{sum(len(s.images) for s in sets)} images; made at {time.perf_counter() - t0:.0f} s"
        )
        for name, half, images, truth in all_sets:
            t1 = time.perf_counter()
            # SSIM serves only the naive baseline, which runs on the first draw
            mats = matrices_for(images, args.cache_dir, skip=("ssim",) if draw else ())
            computed[(name, draw)] = (half, images, mats, truth)
            print(f"  {name}: {len(images)} images, matrices in {time.perf_counter() - t1:.0f} s")
    print(f"matrices done at {time.perf_counter() - t0:.0f} s", flush=True)
    return computed


def fit_models(computed: Computed) -> dict[str, Combo]:
    """Every combination, the pair models fitted on the development sets of every draw."""
    combos = dict(COMBOS)
    for key, names in PAIR_MODELS.items():
        # the model names its metrics as the registry does: {registry name: bench matrix}
        dev = [
            ({BASE[n][0]: mats[n] for n in names}, truth)
            for half, _, mats, truth in computed.values()
            if half == "development"
        ]
        recipes = [name for (name, _), (half, *_) in computed.items() if half == "development"]
        metrics = [BASE[n][0] for n in names]
        # the regularisation chosen by cross-validation, leaving one development recipe out
        # (its draws share their source images)
        c, losses = choose_c(dev, metrics, groups=recipes, random_state=0)
        model = fit_pair_model(dev, metrics, c=c, random_state=0)
        table = ", ".join(f"C={k:g}: {v:.5f}" for k, v in losses.items())
        print(f"pair model {key}: cross-validated log-loss {table} (lowest at C = {c:g})")
        print(f"pair model {key} (fitted on {len(dev)} development sets): {model}")
        combos[key] = _applier(model, names)
    return combos


def score_all(args: argparse.Namespace, computed: Computed, combos: dict[str, Combo]) -> Scores:
    scores: Scores = {}
    for (name, draw), (_, images, mats, truth) in computed.items():
        ids = mats["sift"].ids
        for combo_name, combo in combos.items():
            m = combo(mats)
            for method_name, method in METHODS.items():
                if method.get("threshold") is not None and not combo_name.startswith("learned"):
                    continue  # a fixed similarity threshold means something on probabilities
                r = cluster(m.values, ClusteringConfig(**method), random_state=0)
                scores.setdefault((combo_name, method_name), {})[(name, draw)] = ari(
                    ids, r.labels, truth
                )
                if combo_name.startswith("learned") and method_name == "spectral-20nn":
                    merged = merge_close(m.values, r.labels, MERGE_AT)
                    row = scores.setdefault((combo_name, method_name + MERGED), {})
                    row[(name, draw)] = ari(ids, merged, truth)
        if draw == 0:
            # the shipped default through the pipeline, as `atelier analyze --labels` runs
            # it: the first draw (it recomputes every pair; the rows above are its check)
            scores.setdefault(("atelier default", "AnalysisConfig()"), {})[(name, draw)] = (
                default_score(images, truth, args.cache_dir)
            )
        if args.no_baselines or draw > 0:
            continue  # the baselines on the first draw: they are far from every candidate
        for metric in ("ssim", "sift"):
            lab = naive_reference(mats[metric], 0)
            scores.setdefault((f"naive {metric}", "spectral+sil(S)"), {})[(name, draw)] = ari(
                ids, lab, truth
            )
        lab = clustimage_labels(images)
        scores.setdefault(("clustimage", "default"), {})[(name, draw)] = (
            ari(ids, lab, truth) if lab is not None else float("nan")
        )
        lab = clusteval_labels(combos["learned(contour,sift)"](mats).values)
        scores.setdefault(("clusteval on mds(learned)", "agglo+sil"), {})[(name, draw)] = (
            ari(ids, lab, truth) if lab is not None else float("nan")
        )
    return scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small subset of the sets")
    parser.add_argument("--offline", action="store_true", help="never download the paintings")
    parser.add_argument("--cache-dir", default=None, help="Atelier's feature cache folder")
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument(
        "--draws", type=int, choices=range(1, len(DRAW_SEEDS) + 1), default=None,
        help=f"draws of each set (default {len(DRAW_SEEDS)}; 1 with --quick)",
    )  # fmt: skip
    parser.add_argument(
        "--confirm", type=int, metavar="SEED", default=None,
        help="after the choice: score the default on held-out-source sets made with SEED",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.draws is None:
        args.draws = 1 if args.quick else len(DRAW_SEEDS)
    if args.confirm is not None:
        if args.confirm in DRAW_SEEDS:
            parser.error("--confirm needs another seed than the benchmark's draws")
        return confirm(args)
    t0 = time.perf_counter()
    computed = compute_all(args, t0)
    combos = fit_models(computed)
    scores = score_all(args, computed, combos)
    report(scores, computed)
    print(f"\nmeasured in {time.perf_counter() - t0:.0f} s")
    return 0


def _shipped_method() -> str | None:
    """The METHODS entry that the shipped ClusteringConfig() is, if one is."""
    shipped = ClusteringConfig()
    for name, options in METHODS.items():
        if all(getattr(shipped, key) == value for key, value in options.items()):
            return name
    return None


def _recipe(name: str) -> str:
    return name.replace("-dev", "").replace("-held", "")


def _summarise(
    vals: dict[tuple[str, int], float], names: list[str]
) -> tuple[list, float, float, float]:
    """Each set's mean over its draws, the worst and the mean of those, the worst single draw."""
    means = [float(np.nanmean([v for (n, _), v in vals.items() if n == name])) for name in names]
    singles = [v for (n, _), v in vals.items() if n in names]
    if not means:
        return [], np.nan, np.nan, np.nan
    return means, float(np.nanmin(means)), float(np.nanmean(means)), float(np.nanmin(singles))


def _keep_or_change(best: tuple, shipped: tuple, dev: list[str], draws: int) -> str:
    """Whether the rule's pick beats the shipped default by more than the noise of the
    development half, read from the development half alone.

    The noise is the largest standard error, over the development recipes, of the
    shipped default's mean over the draws (the spread of its draws over the root of
    their number). A pick whose worst development recipe is better by no more than
    that changes nothing: measured, a change as small as the order of equal keypoints
    moved a candidate's worst development recipe by 0.023 (docs/accuracy.md).
    """
    if best is shipped or draws < 2:
        return f"the rule's pick is the shipped default: {best[0]} + {best[1]}"
    errors = []
    for name in dev:
        vals = [shipped[2][(name, d)] for d in range(draws) if (name, d) in shipped[2]]
        if len(vals) > 1:
            errors.append(float(np.std(vals, ddof=1)) / np.sqrt(len(vals)))
    noise = max(errors, default=0.0)
    gain = best[3][1] - shipped[3][1]
    verdict = "kept" if gain <= noise else "to change"
    return (
        f"shipped default {verdict}: the rule's pick, {best[0]} + {best[1]}, is better on the "
        f"worst development recipe by {gain:.3f}; the noise (the largest standard error of "
        f"the shipped default's development recipes over {draws} draws) is {noise:.3f}"
    )


def _print_draws(vals: dict[tuple[str, int], float], names: list[str], draws: int) -> None:
    """A row's every set, draw by draw."""
    for n in names:
        row = " / ".join(f"{vals[(n, d)]:.3f}" for d in range(draws) if (n, d) in vals)
        print(f"  {n:<18} {row}")


def report(scores: Scores, computed: Computed) -> None:
    names = list(dict.fromkeys(n for n, _ in computed))
    dev = [n for n in names if computed[(n, 0)][0] == "development"]
    held = [n for n in names if computed[(n, 0)][0] == "held-out"]
    draws = 1 + max(d for _, d in computed)
    rows = []
    shipped = scores.get(("atelier default", "AnalysisConfig()"))
    for (combo, method), vals in scores.items():
        if vals is shipped:
            continue  # first draw only: printed apart, beside the candidate row it equals
        d = _summarise(vals, dev)
        h = _summarise(vals, held)
        rows.append((combo, method, vals, d, h))
    # exact ties (methods that give the same labels on every development set) go to the
    # shipped clustering: a default is not changed without evidence
    kept = _shipped_method()
    rows.sort(
        key=lambda r: (
            -np.nan_to_num(r[3][1], nan=-9), -np.nan_to_num(r[3][2], nan=-9), r[1] != kept
        )
    )  # fmt: skip
    short = {n: _recipe(n)[:9] for n in names}
    print(
        f"\nadjusted Rand index, automatic k (noise = one family per image); each set's "
        f"mean over {draws} draw(s) (baselines: the first), the worst single set of the "
        "held-out half, the samples"
    )
    print(f"development half: {', '.join(dev)}")
    print(f"held-out half:    {', '.join(held)}")
    head = f"{'similarity':<30}{'method':<19}"
    head += "".join(f"{short[n]:>10}" for n in dev) + f"{'dev min':>9}{'dev mean':>9} |"
    head += "".join(f"{short[n]:>10}" for n in held) + f"{'held min':>9}{'held mean':>10}"
    head += f"{'held 1 set':>11}{'samples':>9}"
    print(head)
    for combo, method, vals, d, h in rows:
        line = f"{combo:<30}{method:<19}" + "".join(f"{v:>10.3f}" for v in d[0])
        line += f"{d[1]:>9.3f}{d[2]:>9.3f} |" + "".join(f"{v:>10.3f}" for v in h[0])
        line += f"{h[1]:>9.3f}{h[2]:>10.3f}{h[3]:>11.3f}{vals.get(('samples', 0), np.nan):>9.3f}"
        print(line)
    candidates = [r for r in rows if not r[0].startswith(("naive", "clustimage", "clusteval"))]

    def summary(r: tuple) -> str:
        return (
            f"{r[0]} + {r[1]}: development worst {r[3][1]:.3f}, mean {r[3][2]:.3f}; held-out "
            f"worst {r[4][1]:.3f}, mean {r[4][2]:.3f}, worst single set {r[4][3]:.3f}; "
            f"samples {r[2].get(('samples', 0), np.nan):.3f}"
        )

    print(f"\nchosen on the development half, every candidate: {summary(candidates[0])}")
    # local scaling (ls) is a diagnostic here: the pipeline has no such fusion, and it
    # gives no probability of the same template for query and evidence to report; nor
    # does the pipeline merge clusters after clustering (MERGE_AT): measured beside it
    shippable = next(
        r for r in candidates if not r[0].startswith(PIPELINE_LACKS) and MERGED not in r[1]
    )
    print(f"chosen on the development half, the pipeline's options: {summary(shippable)}")
    _print_draws(shippable[2], names, draws)
    if shipped is not None:
        same = [
            r for r in candidates
            if all(abs(r[2].get(k, np.nan) - v) < 1e-12 for k, v in shipped.items())
        ]  # fmt: skip
        match = ", ".join(f"{r[0]} + {r[1]}" for r in same) or "no candidate row"
        print(f"shipped default (AnalysisConfig()) on the first draw equals: {match}")
        for r in same[:1]:
            print(f"shipped default over every draw: {summary(r)}")
            if r is not shippable:  # its every set, draw by draw, too
                _print_draws(r[2], names, draws)
            print(_keep_or_change(shippable, r, dev, draws))
        per_set = "  ".join(f"{n} {shipped[(n, 0)]:.3f}" for n in names if (n, 0) in shipped)
        print(f"shipped default, first draw: {per_set}")


if __name__ == "__main__":
    sys.exit(main())
