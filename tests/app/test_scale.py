"""Scale features through the CLI: shortlist mode and incremental runs into one output folder."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil

import numpy as np
import pytest
from factory import SAMPLES, copy_samples

from app.cli import main


def _run(args) -> dict:
    assert main(["analyze", *map(str, args), "--no-progress"]) == 0
    return json.loads((args[2] / "run.json").read_text())


@pytest.mark.slow
def test_shortlist_mode_on_the_samples(tmp_path):
    out = tmp_path / "out"
    run = _run(
        [SAMPLES, "--out", out, "--shortlist", "--labels", SAMPLES / "families.csv"]
        + ["--cache-dir", tmp_path / "cache"]
    )
    sl = run["shortlist"]
    assert sl["k"] == 20 and sl["pairs"] == run["similarity"]["sift"]["pairs"]
    assert sl["pairs"] < 45 * 44 // 2  # fewer pairs than all of them
    assert run["similarity"]["sift"]["cache"]["pairs_computed"] == sl["pairs"]
    # measured 1.000 (HDBSCAN, the fallback before: 0.937; all pairs: 1.000)
    assert run["evaluation"]["adjusted_rand"] >= 0.95
    assert run["evaluation"]["shortlist_recall"] == 1.0  # every same-family pair compared
    assert "sparse graph" in " ".join(run["clustering"]["warnings"])
    # the default, spectral with k by silhouette, needs every pair: on the pair model's
    # probability, average linkage of the sparse graph cut at 0.5, said so
    assert run["clustering"]["method"] == "agglomerative"
    assert "cut where the pair model's probability" in run["clustering"]["warnings"][0]
    # the written matrices list the compared pairs, once each, in [0, 1]
    for name in ("fused", "sift", "contour"):
        rows = (out / f"similarity_{name}.csv").read_text().splitlines()
        assert rows[0] == "image_a,image_b,similarity" and len(rows) == 1 + sl["pairs"]
        pairs = [r.rsplit(",", 1)[0] for r in rows[1:]]
        assert len(set(pairs)) == len(pairs)
        values = np.array([float(r.rsplit(",", 1)[1]) for r in rows[1:]])
        assert values.min() >= 0 and values.max() <= 1


def test_incremental_run_computes_only_the_new_image(tmp_path):
    folder = copy_samples(tmp_path / "images", "photo_*", limit=12)
    held = sorted(folder.glob("*"))[-1]
    shutil.move(held, tmp_path / held.name)
    out, cache = tmp_path / "out", tmp_path / "cache"
    args = [folder, "--out", out, "--cache-dir", cache, "--workers", "1"]
    first = _run(args)
    shutil.move(tmp_path / held.name, held)
    second = _run(args)
    n = len(second["inputs"])
    assert n == len(first["inputs"]) + 1
    for name in ("contour", "sift"):
        c = second["similarity"][name]["cache"]
        assert c["features_computed"] == 1 and c["features_cached"] == n - 1
        assert c["pairs_computed"] == n - 1 and c["pairs_cached"] == (n - 1) * (n - 2) // 2


def _count_drawn(monkeypatch, kinds):  # noqa: ANN001, ANN202
    """The kinds of figure drawn from now on (of ``kinds``), one entry a figure job: the
    figures drawn in this process counted where they are composed (``_PICTURE``), the
    others where they are drawn (``_DRAW``)."""
    import app.outputs as outputs

    drawn: list[str] = []
    for kind in kinds:
        table = outputs._PICTURE if kind in outputs._PICTURE else outputs._DRAW
        real = table[kind]
        monkeypatch.setitem(
            table, kind, lambda r, a, kind=kind, real=real: drawn.append(kind) or real(r, a)
        )
    return drawn


def _prints_written(tmp_path):  # noqa: ANN001, ANN202
    """The sample prints analysed (one process) and written into ``tmp_path / "out"``."""
    from app.config import AnalysisConfig
    from app.outputs import write_outputs
    from app.pipeline import run_analysis

    folder = copy_samples(tmp_path / "images", "print_*")
    cfg = AnalysisConfig().replace(similarity={"cache_dir": str(tmp_path / "cache")}, n_jobs=1)
    result = run_analysis(folder, cfg)
    out = tmp_path / "out"
    write_outputs(result, out)
    return cfg, result, out


def test_unchanged_cluster_figures_are_reused(tmp_path, monkeypatch):
    import app.outputs as outputs

    _, result, out = _prints_written(tmp_path)
    first = {p.name: p.read_bytes() for p in (out / "figures").glob("cluster_*.png")}
    assert first
    drawn: list[object] = []
    real = outputs.cluster_grid

    def counting(res, *, label=None, **kw):  # noqa: ANN001, ANN202
        drawn.append(label)
        return real(res, label=label, **kw)

    monkeypatch.setattr(outputs, "cluster_grid", counting)
    tampered = sorted(first)[0]
    (out / "figures" / tampered).write_bytes(b"not the figure")
    outputs.write_outputs(result, out)
    # the figure whose file no longer holds what was written comes from the cache
    assert drawn == []
    again = {p.name: p.read_bytes() for p in (out / "figures").glob("cluster_*.png")}
    assert again == first
    # without the cache, that one figure is drawn, and the overview (the setting is
    # part of the analysis it shows); the other grids are taken from the folder
    (out / "figures" / tampered).write_bytes(b"not the figure")
    nocache = result.config.replace(similarity={"cache": False})
    outputs.write_outputs(dataclasses.replace(result, config=nocache), out)
    assert drawn == [None, int(tampered.split("_")[1].split(".")[0])]
    again = {p.name: p.read_bytes() for p in (out / "figures").glob("cluster_*.png")}
    assert again == first


def test_figures_drawn_once_are_taken_from_the_cache_in_any_folder(tmp_path, monkeypatch):
    """A keyed figure is stored in the feature cache: the same analysis written into a
    new folder draws nothing; with --no-cache it draws everything."""
    import app.outputs as outputs

    _, result, out = _prints_written(tmp_path)
    first = {p.name: p.read_bytes() for p in (out / "figures").glob("*.png")}
    drawn = _count_drawn(monkeypatch, list(outputs._DRAW))
    outputs.write_outputs(result, tmp_path / "elsewhere")
    assert drawn == []
    elsewhere = {p.name: p.read_bytes() for p in (tmp_path / "elsewhere/figures").glob("*.png")}
    assert elsewhere == first
    nocache = result.config.replace(similarity={"cache": False})
    outputs.write_outputs(dataclasses.replace(result, config=nocache), tmp_path / "third")
    assert "grid" in drawn and "heatmap" in drawn and "evidence" in drawn


def test_input_thumbnails_are_made_once(tmp_path, monkeypatch):
    """The report's inputs table takes each image's thumbnail from the cache after the
    first run (keyed by the file and how it is decoded): the same report, none made."""
    import app.outputs as outputs

    _, result, out = _prints_written(tmp_path)
    made: list[int] = []
    real = outputs.input_thumbnail
    monkeypatch.setattr(outputs, "input_thumbnail", lambda px: made.append(1) or real(px))
    outputs.write_outputs(result, tmp_path / "again")
    assert made == []

    def thumbs(folder):
        return re.findall(
            r"data:image/jpeg;base64,[A-Za-z0-9+/=]+", (folder / "report.html").read_text()
        )

    assert len(thumbs(out)) == len(result.ids) and thumbs(tmp_path / "again") == thumbs(out)
    # another work size decodes the files otherwise: made again, one per image
    other = result.config.replace(preprocess={"work_size": 128})
    outputs.write_outputs(dataclasses.replace(result, config=other), tmp_path / "third")
    assert len(made) == len(result.ids)


def test_figures_of_the_whole_analysis_are_reused_only_when_nothing_changed(tmp_path, monkeypatch):
    """The overview, dendrogram, scatter plot, silhouettes and k selection are drawn
    again only when the analysis changed (here: another k); the same analysis written
    again, even after a new run of it (other timings), draws none of them."""
    import app.outputs as outputs
    from app.pipeline import recluster, run_analysis

    cfg, result, out = _prints_written(tmp_path)
    assert "clustering was read from the cache" not in (out / "report.html").read_text()
    whole = ["clusters", "dendrogram", "scatter", "silhouette", "k_selection"]
    first = {name: (out / "figures" / f"{name}.png").read_bytes() for name in whole}
    drawn = _count_drawn(monkeypatch, whole)
    # a new run of the same analysis: its own timings, its clustering read from the cache
    rerun = run_analysis(tmp_path / "images", cfg)
    assert rerun.timings != result.timings
    assert outputs.analysis_key(rerun) == outputs.analysis_key(result)
    outputs.write_outputs(rerun, out)
    assert drawn == []
    assert "clustering was read from the cache" in (out / "report.html").read_text()
    assert {n: (out / "figures" / f"{n}.png").read_bytes() for n in whole} == first

    other = recluster(result, cfg.replace(clustering={"n_clusters": 2}))
    assert outputs.analysis_key(other) != outputs.analysis_key(result)
    outputs.write_outputs(other, out)
    assert sorted(drawn) == sorted(["clusters", "dendrogram", "scatter", "silhouette"])
    # no k was searched: the earlier run's k selection is not left behind
    assert not (out / "figures" / "k_selection.png").exists()
    assert "k_selection.png" not in (out / "report.html").read_text()


def test_pair_evidence_and_heatmaps_are_reused_when_only_the_clustering_changes(
    tmp_path, monkeypatch
):
    import app.outputs as outputs
    from app.pipeline import recluster

    cfg, result, out = _prints_written(tmp_path)
    first = {p.name: p.read_bytes() for p in (out / "figures").glob("*")}
    pairs = outputs.top_pairs(result, cfg.report.evidence_pairs)
    drawn: list[tuple[str, str]] = []
    real = outputs.pair_evidence

    def counting(images, matrices, config, i, j, **kw):  # noqa: ANN001, ANN202
        drawn.append((images[i].id, images[j].id))
        return real(images, matrices, config, i, j, **kw)

    monkeypatch.setattr(outputs, "pair_evidence", counting)
    heatmaps: list[str] = []
    real_heatmap = outputs.similarity_heatmap
    monkeypatch.setattr(
        outputs, "similarity_heatmap", lambda r, m: heatmaps.append(m) or real_heatmap(r, m)
    )
    csvs = sorted(out.glob("similarity_*.csv"))
    inodes = {p.name: p.stat().st_ino for p in csvs}
    tampered = csvs[0]
    tampered.write_text("not the matrix")
    # the same analysis written again: nothing keyed is drawn, every file is the same, and
    # a matrix file holding its matrix is left as it is (one that does not is written again)
    outputs.write_outputs(result, out)
    assert drawn == [] and heatmaps == []
    assert {p.name: p.read_bytes() for p in (out / "figures").glob("*")} == first
    for p in csvs:
        assert (p.stat().st_ino == inodes[p.name]) == (p != tampered), p.name
    assert tampered.read_text().startswith("image,")
    assert len(tampered.read_text().splitlines()) == len(result.ids) + 1

    # another clustering of the same matrices: a pair kept among the strongest keeps its
    # evidence (not drawn again, the same bytes, under its new name); the others are drawn
    other = recluster(result, cfg.replace(clustering={"method": "agglomerative", "n_clusters": 2}))
    outputs.write_outputs(other, out)
    again = outputs.top_pairs(other, cfg.report.evidence_pairs)
    ids = result.ids
    before = {
        (ids[i], ids[j]): (kind, r) for kind, p in pairs.items() for r, (i, j) in enumerate(p, 1)
    }
    after = {
        (ids[i], ids[j]): (kind, r) for kind, p in again.items() for r, (i, j) in enumerate(p, 1)
    }
    assert sorted(drawn) == sorted(pair for pair in after if pair not in before)
    kept = [pair for pair in after if pair in before]
    assert kept and drawn  # (measured: 3 kept, 3 new with two clusters)
    for pair in kept:
        (k0, r0), (k1, r1) = before[pair], after[pair]
        name0, name1 = f"pair_{k0}_{r0:02d}_contour.png", f"pair_{k1}_{r1:02d}_contour.png"
        assert (out / "figures" / name1).read_bytes() == first[name0]
    # the heatmaps show the clusters: drawn again only where the clusters along them changed
    same_labels = (other.clustering.labels == result.clustering.labels).all()
    assert heatmaps == ([] if same_labels else list(result.matrices))
    # an earlier run's figures of clusters this run does not have are not left behind
    grids = sorted(p.name for p in (out / "figures").glob("cluster_*.png"))
    assert grids == [f"cluster_{lab:02d}.png" for lab in sorted(set(other.clustering.labels))]


def test_a_rerun_takes_its_clustering_from_the_cache(tmp_path, monkeypatch):
    """Equal matrices, settings and seed: the stored clustering, not searched again;
    any of them changed, or no cache: computed."""
    import app.pipeline as pipeline

    cfg, result, _ = _prints_written(tmp_path)
    folder = tmp_path / "images"
    calls: list[str] = []
    real = pipeline._cluster
    monkeypatch.setattr(
        pipeline, "_cluster", lambda m, c, f: calls.append(c.clustering.method) or real(m, c, f)
    )
    again = pipeline.run_analysis(folder, cfg)
    assert calls == []
    assert again.compute["clustering_from_cache"] and not result.compute["clustering_from_cache"]
    np.testing.assert_array_equal(again.clustering.labels, result.clustering.labels)
    np.testing.assert_equal(again.clustering.selection, result.clustering.selection)  # NaN too
    assert again.clustering.exemplars == result.clustering.exemplars
    agglomerative = cfg.replace(clustering={"method": "agglomerative"})
    pipeline.run_analysis(folder, agglomerative)
    pipeline.run_analysis(folder, agglomerative)  # stored by the run before
    pipeline.run_analysis(folder, cfg.replace(random_state=cfg.random_state + 1))
    pipeline.run_analysis(folder, cfg.replace(similarity={"cache": False}))
    assert calls == ["agglomerative", "spectral", "spectral"]
    # the key reads every value of the matrix
    matrix = result.matrices[result.clustering_metric]
    values = matrix.values.copy()
    values[0, 1] = values[1, 0] = values[0, 1] - 1e-12
    key = pipeline.clustering_key(matrix, cfg, None)
    assert pipeline.clustering_key(dataclasses.replace(matrix, values=values), cfg, None) != key
    assert pipeline.clustering_key(matrix, cfg, np.zeros((len(values), 2))) != key


@pytest.mark.parametrize(
    "evidence,n_images,workers",
    [(0, 1000, 0), (3, 1000, 0), (4, 1000, 2), (6, 72, 3), (6, 4000, 3), (6, 4001, 0),
     (2, 45, 0)],
)  # fmt: skip
def test_figure_workers_start_where_the_figures_repay_them(evidence, n_images, workers):
    """Under two: drawn in this process. Only pair evidence repays workers (a first
    run's six pairs); a re-run with another clustering, with a few new pairs and figures
    composed in pixels, is drawn here; a very large analysis never on workers (each
    would be sent its n x n matrices)."""
    from app.outputs import figure_workers

    assert figure_workers(evidence, n_images) == workers


@pytest.mark.parametrize(
    "n,k,lines,smooth",
    [(60, 12, True, False), (400, 12, True, False), (400, 300, False, False),
     (1200, 240, False, True)],
)  # fmt: skip
def test_a_heatmap_draws_boundaries_while_the_axis_can_part_them(monkeypatch, n, k, lines, smooth):
    """Cluster boundaries are drawn up to MAX_BOUNDARY_LINES clusters; more (2,085 at
    10,000 images) covered the whole matrix in white, so they are left out and the
    title says so. Past the axis' pixels blocks of cells are averaged (from the pairs),
    not sampled."""
    from types import SimpleNamespace

    from app.plots import structure
    from similarity import SimilarityMatrix

    monkeypatch.setattr(structure, "leaf_order", lambda r: list(range(n)))
    labels = np.sort(np.arange(n) % k)
    values = np.where(labels[:, None] == labels[None, :], 0.9, 0.1)
    np.fill_diagonal(values, 1.0)
    ids = tuple(f"im{i}.jpg" for i in range(n))
    result = SimpleNamespace(
        ids=ids,
        matrices={"m": SimilarityMatrix(ids, values, "m")},
        clustering=SimpleNamespace(labels=labels),
    )
    content = structure.heatmap_content(result, "m")
    assert content.lines == lines
    changes = np.flatnonzero(np.diff(labels)) + 1
    assert content.bounds.tolist() == changes.tolist()
    if lines:
        assert "white lines: where the cluster changes" in content.title
    else:
        assert f"{k} clusters, too many to draw their boundaries" in content.title
        assert f"({k - 1} along this order, at most 200)" in content.title
    if smooth:  # blocks of 2 x 2 cells averaged: 600 a side
        assert content.values.shape == (600, 600) and content.block == 2
        np.testing.assert_allclose(content.values, values.reshape(600, 2, 600, 2).mean(axis=(1, 3)))
    else:
        assert content.values.shape == (n, n) and content.block == 1
    assert (content.names is not None) == (n <= 80)
    # the picture: along a row of cells of the first cluster, a white line where each
    # cluster ends (1-2 px) while they are drawn, none when they are not
    pixels = np.asarray(structure.similarity_heatmap(result, "m"), np.int16)
    coloured = pixels.max(axis=2) - pixels.min(axis=2) > 20  # viridis has no grey
    x0 = int(np.flatnonzero(coloured.any(axis=0))[0])
    y = int(np.flatnonzero(coloured[:, x0])[0]) + 1
    row = coloured[y, x0:]
    edges = np.flatnonzero(np.diff(row.astype(np.int8)))
    pairs = len(edges) // 2
    gaps = edges[1 : 2 * pairs : 2] - edges[0 : 2 * pairs : 2]  # white runs after colours
    assert int((gaps <= 2).sum()) == (k - 1 if lines else 0)
    assert max(pixels.shape[:2]) < 1400


@pytest.mark.slow
@pytest.mark.parametrize("align", ["none", "translation"])
def test_a_run_that_keeps_its_pixels_on_disk_writes_the_same_results(tmp_path, monkeypatch, align):
    import gc

    import app.pipeline
    from preprocessing.spill import SPILL_PREFIX

    folder = copy_samples(tmp_path / "images", "cartoon_a*")  # 9 images
    monkeypatch.setattr(app.pipeline, "POOL_MIN_IMAGES", 2)  # the workers read the spill
    runs, outputs = {}, {}
    for mode, at in (("held", 10**9), ("spilled", 0)):
        monkeypatch.setattr(app.pipeline, "SPILL_MIN_IMAGES", at)
        out = tmp_path / mode
        args = [folder, "--out", out, "--shortlist", "--align", align, "--workers", "2"]
        # a cache of its own: each run extracts its features, on the pool
        args += ["--cache-dir", tmp_path / f"cache-{mode}"]
        runs[mode] = _run(args + ["--labels", SAMPLES / "families.csv"])
        gc.collect()
        # the spill's folder, beside the cache, is gone with the result
        assert not list(tmp_path.glob(f"{SPILL_PREFIX}*"))
        written = sorted(out.glob("similarity_*.csv")) + [out / "clusters.csv"]
        outputs[mode] = {p.name: p.read_bytes() for p in written}
    held, spilled = runs["held"], runs["spilled"]
    assert held["compute"]["pixels_on_disk_gb"] == 0
    # 9 decoded and 9 work images, 0.9 MB an image (with alignment, the moved ones too)
    assert 0.006 < spilled["compute"]["pixels_on_disk_gb"] < 0.016
    assert outputs["held"] == outputs["spilled"] and len(outputs["held"]) == 4
    assert held["evaluation"] == spilled["evaluation"]
    assert held["similarity"]["sift"]["cache"]["features_computed"] == 9
    assert held["compute"]["kind"] == spilled["compute"]["kind"] == "processes"
    assert (tmp_path / "spilled" / "report.html").stat().st_size > 10_000


def test_a_large_heatmap_averages_blocks_of_the_compared_pairs():
    """binned_matrix from a shortlist's pairs: each block the mean of its cells in the
    given order (pairs not compared 0, the diagonal 1), the last block smaller."""
    from app.plots.structure import binned_matrix
    from similarity import ShortlistMatrix

    rng = np.random.default_rng(2)
    n = 11
    iu = np.triu_indices(n, k=1)
    keep = rng.random(len(iu[0])) < 0.5
    m = ShortlistMatrix(
        tuple(map(str, range(n))), np.column_stack([iu[0][keep], iu[1][keep]]),
        rng.random(keep.sum()), "m",
    )  # fmt: skip
    order = rng.permutation(n).tolist()
    got, f = binned_matrix(m, order, 4)
    assert f == 3 and got.shape == (4, 4)
    dense = m.values[np.ix_(order, order)]
    for a in range(4):
        for b in range(4):
            block = dense[3 * a : 3 * a + 3, 3 * b : 3 * b + 3]
            assert got[a, b] == pytest.approx(block.mean(), abs=1e-12)


def test_a_shortlists_scatter_plot_axes_come_from_its_pairs():
    """Classical MDS of a shortlist from its compared pairs (no n x n array): the same
    axes as the dense distances with every pair not compared at 1."""
    from app.plots.structure import _classical_2d, _classical_2d_pairs
    from similarity import ShortlistMatrix

    rng = np.random.default_rng(4)
    n, fam = 120, np.repeat(np.arange(24), 5)
    iu = np.triu_indices(n, k=1)
    keep = (fam[iu[0]] == fam[iu[1]]) | (rng.random(len(iu[0])) < 0.05)
    pairs = np.column_stack([iu[0][keep], iu[1][keep]])
    sims = np.where(fam[pairs[:, 0]] == fam[pairs[:, 1]], 0.8, 0.2) + rng.normal(
        0, 0.05, len(pairs)
    )
    m = ShortlistMatrix(tuple(map(str, range(n))), pairs, np.clip(sims, 0, 1), "m")
    np.testing.assert_allclose(_classical_2d_pairs(m), _classical_2d(m.distance()), atol=1e-6)


@pytest.mark.parametrize(
    "dist",
    [
        # three images whose distances break the triangle inequality: a negative axis
        np.array([[0.0, 1.0, 0.1], [1.0, 0.0, 0.1], [0.1, 0.1, 0.0]]),
        np.zeros((4, 4)),  # identical images: a classical start with no spread
    ],
)
def test_the_scatter_plots_mds_is_finite_for_few_or_identical_images(dist):
    """SMACOF starts from the classical axes (one run instead of four random starts);
    scikit-learn's own classical start gave NaN for three such images."""
    from types import SimpleNamespace

    from app.plots.structure import _embedding
    from similarity import SimilarityMatrix

    ids = tuple(f"im{i}.jpg" for i in range(len(dist)))
    result = SimpleNamespace(
        ids=ids,
        matrices={"m": SimilarityMatrix(ids, 1.0 - dist, "m")},
        clustering_metric="m",
        clustering=SimpleNamespace(distance=dist, consumes="matrix", coords=None),
    )
    coords = _embedding(result, "mds", 0)
    assert coords.shape == (len(dist), 2) and np.isfinite(coords).all()
    if dist.any():  # the two far images stay the farthest apart
        gaps = np.linalg.norm(coords[:, None] - coords[None], axis=2)
        assert np.argmax(gaps[np.triu_indices(3, 1)]) == 0


@pytest.mark.parametrize("k", [2, 5])
def test_the_dendrograms_cut_crosses_one_link_a_cluster(k):
    """Composed in pixels: the red dashed cut of an agglomerative clustering into k
    clusters crosses exactly k of the drawn links, and the leaves' squares take k colours
    in leaf order, one run a cluster."""
    from types import SimpleNamespace

    from app.plots.dendrogram import dendrogram_content, dendrogram_figure

    rng = np.random.default_rng(k)
    labels = np.repeat(np.arange(5), 6)
    blocks = np.minimum(labels, k - 1)  # k families (the last k - 1 .. 4 merged)
    dist = np.where(blocks[:, None] == blocks[None, :], 0.1, 0.8)
    dist = dist + rng.uniform(0, 0.05, dist.shape)
    dist = (dist + dist.T) / 2
    np.fill_diagonal(dist, 0.0)
    ids = tuple(f"im{i:02d}.jpg" for i in range(30))
    result = SimpleNamespace(
        ids=ids,
        clustering=SimpleNamespace(
            labels=blocks, k=k, method="agglomerative", criterion="silhouette",
            consumes="distances", distance=dist,
        ),
        config=SimpleNamespace(clustering=SimpleNamespace(linkage="average", threshold=None)),
        clustering_metric="fused",
    )  # fmt: skip
    content = dendrogram_content(result)
    assert content.cut is not None and content.cut[1] == f"cut: {k} clusters"
    assert 0.15 < content.cut[0] < 0.8 and sorted(content.names) == list(ids)
    assert len(set(content.squares)) == k
    runs = 1 + sum(a != b for a, b in zip(content.squares, content.squares[1:], strict=False))
    assert runs == k
    pixels = np.asarray(dendrogram_figure(result), np.int16)
    red = (pixels[..., 0] > 180) & (pixels[..., 1] < 90) & (pixels[..., 2] < 90)
    y = int(np.bincount(np.nonzero(red)[0]).argmax())  # the cut's row
    grey = (np.abs(pixels[y + 3] - 102) <= 10).all(axis=1)
    assert int((np.diff(grey.astype(np.int8)) == 1).sum()) == k


def test_the_scatter_plot_draws_each_image_where_its_embedding_puts_it(monkeypatch):
    """Composed in pixels: each image's thumbnail framed in its cluster's colour at its
    point (12 % of the larger span around the points), noise a black x and framed black."""
    from types import SimpleNamespace

    from app.plots import structure

    xy = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.5]])
    monkeypatch.setattr(structure, "_embedding", lambda r, kind, seed: xy)
    labels = np.array([0, 0, 1, 1, -1])
    thumb = np.full((80, 80, 3), 128, np.uint8)
    ids = tuple(f"im{i}.jpg" for i in range(5))
    result = SimpleNamespace(
        ids=ids,
        images={i: SimpleNamespace(pixels=thumb) for i in ids},
        clustering=SimpleNamespace(labels=labels, k=2),
        config=SimpleNamespace(random_state=0),
        clustering_metric="fused",
    )
    image = structure.scatter_figure(result)
    assert image.info["title"] == "MDS of the fused distances: frame colour = cluster, x = noise"
    pixels = np.asarray(image, np.int16)
    grey = (np.abs(pixels - 128) <= 2).all(axis=2)  # the thumbnails' pixels
    rows, cols = np.nonzero(grey)
    # the plot's frame: 880 x 700 inside a 1 px border, 30 px below the top
    left, top = (image.width - 880) // 2, 31
    for (x, y), lab in zip(xy.tolist(), labels.tolist(), strict=True):
        cx = left + (x + 0.12) / 1.24 * 880
        cy = top + 700 - (y + 0.12) / 1.24 * 700
        near = (np.abs(cols - cx) <= 30) & (np.abs(rows - cy) <= 30)
        assert near.sum() == 44 * 44, (x, y)  # a whole thumbnail (44 px up to 30 images)
        assert abs(cols[near].mean() - cx) <= 1 and abs(rows[near].mean() - cy) <= 1
        edge = pixels[round(cy), round(cx) - 22 - 4]  # its frame's left side
        palette = structure._palette(2)
        assert tuple(edge) == ((0, 0, 0) if lab < 0 else palette[lab]), (x, y)


def test_the_choice_of_k_marks_the_chosen_k_and_the_criterion_that_chose():
    """Composed in pixels: each defined criterion's chart has the red dashed line at the
    chosen k, the criterion that chose is the only one drawn in blue, and a criterion not
    defined for the method is said to be so."""
    from types import SimpleNamespace

    from app.plots import k_selection_figure

    rows = [
        {"k": k, "silhouette": 0.5 - abs(k - 4) / 10, "davies-bouldin": 1.0 + k / 10,
         "calinski-harabasz": 20.0 - k, "derivative": None}
        for k in range(2, 11)
    ]  # fmt: skip
    result = SimpleNamespace(
        clustering=SimpleNamespace(selection=rows, k=4, criterion="silhouette", method="spectral")
    )
    image = k_selection_figure(result)
    assert image.info["title"] == "Choice of k for spectral: k = 4 (red line)"
    pixels = np.asarray(image, np.int16)
    red = (np.abs(pixels - (214, 39, 40)) <= 8).all(axis=2)
    blue = (np.abs(pixels - (31, 119, 180)) <= 8).all(axis=2)
    half_w, half_h = image.width // 2, image.height // 2
    quarters = {
        "silhouette": (slice(0, half_h), slice(0, half_w)),
        "davies-bouldin": (slice(0, half_h), slice(half_w, None)),
        "calinski-harabasz": (slice(half_h, None), slice(0, half_w)),
        "derivative": (slice(half_h, None), slice(half_w, None)),
    }
    for name, (rs, cs) in quarters.items():
        columns = np.flatnonzero(red[rs, cs].sum(axis=0) >= 10)  # the dashed line's column
        if name == "derivative":  # not defined: no chart
            assert columns.size == 0 and not blue[rs, cs].any()
            continue
        assert columns.size == 1
        # k = 4 of 2..10 with 5 % margins: 2.4 / 8.8 of the way along the plot
        # the plot's frame: its two long black sides; k = 4 of 2..10 with 5 % margins
        black = (pixels[rs, cs] <= 10).all(axis=2)
        lo, hi = np.flatnonzero(black.sum(axis=0) >= 150)[[0, -1]]
        assert abs(columns[0] - (lo + (hi - lo) * 2.4 / 8.8)) <= 1.5
        assert blue[rs, cs].any() == (name == "silhouette")


def test_the_silhouettes_bars_end_at_each_images_value():
    """Composed in pixels: an image's bar runs from 0 to its silhouette (sorted within its
    cluster, clusters in order, noise last and grey), the mean a red dashed line."""
    from types import SimpleNamespace

    from app.plots import structure

    labels = np.array([0, 0, 1, 1, 1, -1])
    values = np.array([0.6, 0.2, -0.3, 0.9, 0.4, -0.1])
    result = SimpleNamespace(clustering=SimpleNamespace(labels=labels, silhouette=values, k=2))
    pixels = np.asarray(structure.silhouette_figure(result), np.int16)
    palette = structure._palette(2)
    # the frame: 640 px from -0.35 (the lowest value less 0.05) to 1.0, 60 px from the left
    left, width, low = 60, 640, -0.35

    def x_at(v: float) -> float:
        return left + (v - low) / (1.0 - low) * width

    rows = 6 + 3 - 1  # six bars and two gaps between three groups, 12 px each
    expected = [(0, 0.2), (0, 0.6), None, (1, -0.3), (1, 0.4), (1, 0.9), None, (-1, -0.1)]
    assert len(expected) == rows
    for k, bar in enumerate(expected):
        y = 34 + 12 * k + 6
        if bar is None:
            continue
        lab, value = bar
        colour = (77, 77, 77) if lab < 0 else palette[lab]
        run = np.flatnonzero((pixels[y] == colour).all(axis=1))
        assert run.size, (k, bar)
        assert abs(run.min() - min(x_at(0.0), x_at(value))) <= 1.5
        assert abs(run.max() - max(x_at(0.0), x_at(value))) <= 1.5
    red = (np.abs(pixels - (214, 39, 40)) <= 8).all(axis=2)
    column = int(np.bincount(np.nonzero(red)[1]).argmax())
    assert abs(column - x_at(float(values.mean()))) <= 1.5


@pytest.mark.parametrize("method", ["none", "translation"])
def test_a_rerun_takes_its_alignment_from_the_cache(tmp_path, monkeypatch, method):
    """The same work images and alignment settings: the stored alignment (its images,
    transforms, means and correlations to the bit), not computed again; another setting,
    another seed, another image or no cache: computed."""
    import app.pipeline as pipeline
    from app.config import AnalysisConfig

    folder = copy_samples(tmp_path / "images", "print_*")
    cfg = AnalysisConfig().replace(
        similarity={"metrics": ["ssim"], "cache_dir": str(tmp_path / "cache")},
        preprocess={"align": method},
        n_jobs=1,
    )
    calls: list[str] = []
    real = pipeline.align
    monkeypatch.setattr(
        pipeline, "align", lambda work, **kw: calls.append(kw["method"]) or real(work, **kw)
    )
    first = pipeline.run_analysis(folder, cfg)
    again = pipeline.run_analysis(folder, cfg)
    assert calls == [method]
    a, b = first.aligned, again.aligned
    assert (a.method, a.reference, a.rounds, a.warnings) == (
        b.method,
        b.reference,
        b.rounds,
        b.warnings,
    )
    assert a.quality == b.quality and len(a.quality) == len(first.ids) == 13
    np.testing.assert_array_equal(a.mean_before, b.mean_before)
    np.testing.assert_array_equal(a.mean_after, b.mean_after)
    for x, y in zip(a.images, b.images, strict=True):
        assert x.id == y.id
        np.testing.assert_array_equal(x.gray, y.gray)
        np.testing.assert_array_equal(x.mask, y.mask)
        np.testing.assert_array_equal(x.transform, y.transform)
    np.testing.assert_array_equal(first.matrices["ssim"].values, again.matrices["ssim"].values)
    if method != "none":  # the images moved: some transform is not the identity
        assert any(not np.allclose(im.transform, np.eye(3)) for im in a.images)
    pipeline.run_analysis(folder, cfg.replace(preprocess={"align_rounds": 2}))
    pipeline.run_analysis(folder, cfg.replace(random_state=cfg.random_state + 1))
    pipeline.run_analysis(folder, cfg.replace(similarity={"cache": False}))
    (folder / sorted(p.name for p in folder.iterdir())[0]).unlink()
    pipeline.run_analysis(folder, cfg)
    assert calls == [method] * 5
