"""Keypoint detection: SIFT's contrast threshold adapts to faint images when asked."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from benchsets import _drawing
from skimage import data

from preprocessing.keypoints import CONTRAST_THRESHOLD, Keypoints, detect_rootsift, mutual_matches

ROOT = Path(__file__).resolve().parents[2]

SIZE = 256


def _faint(rng: np.random.Generator) -> np.ndarray:
    """A drawing at a tenth of its contrast under a broad glare (a photograph of a faint work)."""
    gray = _drawing(rng, SIZE) @ np.float32([0.299, 0.587, 0.114])
    rows, cols = gray.shape
    gy, gx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    glare = 0.3 * np.exp(-((gy - rows / 3) ** 2 + (gx - cols / 2) ** 2) / (2 * (0.2 * rows) ** 2))
    return (0.45 + 0.1 * gray + glare).astype(np.float32)


def test_faint_image_keeps_keypoints_with_min_detected():
    rng = np.random.default_rng(0)
    faint = _faint(rng)
    mask = np.ones(faint.shape, bool)
    fixed = detect_rootsift(faint, mask, max_keypoints=300, border=3)
    adaptive = detect_rootsift(faint, mask, max_keypoints=300, border=3, min_detected=300)
    # measured: 2 at SIFT's default threshold, 181 with it lowered to 1/16
    assert len(fixed.points) < 30, len(fixed.points)
    assert len(adaptive.points) >= 120, len(adaptive.points)
    norms = np.linalg.norm(adaptive.descriptors, axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-4)


def _in_order(points: np.ndarray, desc: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints and their descriptors sorted by position (then descriptor): the same
    keypoints detected at two thresholds come out of OpenCV in different orders."""
    desc = np.zeros((len(points), 128), np.float32) if desc is None else np.asarray(desc)
    order = np.lexsort((*desc.T[::-1], points[:, 1], points[:, 0]))
    return points[order], desc[order]


def test_image_with_enough_keypoints_is_detected_as_before():
    image = data.camera().astype(np.float32) / 255  # 512 px: over 300 at the default
    mask = np.ones(image.shape, bool)
    fixed = detect_rootsift(image, mask, max_keypoints=300, border=3)
    adaptive = detect_rootsift(image, mask, max_keypoints=300, border=3, min_detected=300)
    assert len(fixed.points) >= 300  # OpenCV may keep one more on a tie
    points, desc = _in_order(fixed.points, fixed.descriptors)
    got_points, got_desc = _in_order(adaptive.points, adaptive.descriptors)
    np.testing.assert_array_equal(got_points, points)
    np.testing.assert_array_equal(got_desc, desc)


def _halving(image: np.ndarray, mask: np.ndarray, max_keypoints: int, target: int):
    """The adaptive detection as a plain loop (a detection per threshold): the reference
    that detect_rootsift's single lowest-threshold count must agree with."""
    img = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    detect = cv2.erode(mask.astype(np.uint8), np.ones((7, 7), np.uint8))
    threshold = CONTRAST_THRESHOLD
    while True:
        sift = cv2.SIFT.create(nfeatures=max_keypoints, contrastThreshold=threshold)
        kps, desc = sift.detectAndCompute(img, detect)
        if len(kps) >= target or threshold <= CONTRAST_THRESHOLD / 16:
            return np.array([k.pt for k in kps], np.float32).reshape(-1, 2), desc
        threshold /= 2


def _padded(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``image`` shrunk onto a square canvas at a random place, with its mask (how a work
    image of another aspect is placed)."""
    side = image.shape[0]
    small = cv2.resize(image, (side * 3 // 4, side // 2), interpolation=cv2.INTER_AREA)
    top, left = rng.integers(0, side // 2), rng.integers(0, side // 4)
    canvas = np.zeros((side, side), np.float32)
    mask = np.zeros((side, side), bool)
    canvas[top : top + small.shape[0], left : left + small.shape[1]] = small
    mask[top : top + small.shape[0], left : left + small.shape[1]] = True
    return canvas, mask


@pytest.mark.parametrize("budget", [100, 300])
def test_adaptive_detection_equals_the_halving_loop(budget: int):
    # sample artworks (whole, mirrored, padded), a faint drawing and a photograph: one
    # detection at the lowest threshold keeps the loop's keypoints, wherever the loop stops
    rng = np.random.default_rng(5)
    images = [_faint(rng), data.camera()[::2, ::2].astype(np.float32) / 255]
    for path in sorted((ROOT / "sample_artworks" / "images").glob("*.jpg"))[::4]:
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
        images.append(cv2.resize(gray, (SIZE, SIZE), interpolation=cv2.INTER_AREA))
    cases = []
    for image in images:
        full = np.ones(image.shape, bool)
        cases += [(image, full), (np.ascontiguousarray(image[:, ::-1]), full)]
        cases.append(_padded(image, rng))
    stops = set()
    for image, mask in cases:
        points, desc = _halving(image, mask, budget, budget)
        got = detect_rootsift(image, mask, max_keypoints=budget, border=3, min_detected=budget)
        if desc is not None:
            desc = np.sqrt(desc / (np.abs(desc).sum(axis=1, keepdims=True) + 1e-7))
        points, desc = _in_order(points, desc)
        got_points, got_desc = _in_order(got.points, got.descriptors)
        np.testing.assert_array_equal(got_points, points)
        stops.add(len(points) >= budget)
        np.testing.assert_allclose(got_desc, desc, atol=1e-6)
    assert stops == {True, False}  # some fill the budget, some end short of it at the lowest


def _matches_in_numpy(a: Keypoints, b: Keypoints, ratio: float) -> np.ndarray:
    """The mutual ratio-test matching as NumPy expressions (the code before the kernel)."""
    sim = a.descriptors @ b.descriptors.T

    def best_two(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = np.arange(m.shape[0])
        nearest = m.argmax(axis=1)
        first = m[rows, nearest]
        rest = m.copy()
        rest[rows, nearest] = -np.inf
        second = rest.max(axis=1)
        d1 = np.maximum(2.0 - 2.0 * first, 0.0)
        d2 = np.maximum(2.0 - 2.0 * second, 0.0)
        return nearest, d1 < ratio * ratio * d2

    ab, ok_ab = best_two(sim)
    ba, ok_ba = best_two(sim.T)
    i = np.arange(len(a.points))
    mutual = ok_ab & ok_ba[ab] & (ba[ab] == i)
    pairs = np.stack([i[mutual], ab[mutual]], axis=1).astype(int)
    # listed by position: a's x, a's y, then b's x and y
    keys = [(*a.points[p], *b.points[q]) for p, q in pairs]
    return pairs[sorted(range(len(pairs)), key=keys.__getitem__)].reshape(-1, 2)


@pytest.mark.parametrize("levels", [None, 2, 3])  # 2 and 3: coarse values, many ties
def test_mutual_matches_equal_the_numpy_expressions(levels: int | None):
    rng = np.random.default_rng(levels or 0)

    def keypoints(n: int) -> Keypoints:
        d = rng.random((n, 128), dtype=np.float32) ** 4
        if levels:
            d = np.round(d * levels) / levels + 1e-3
        d = (d / np.linalg.norm(d, axis=1, keepdims=True)).astype(np.float32)
        return Keypoints(rng.random((n, 2), dtype=np.float32), d, (64, 64))

    compared = 0
    for n_a, n_b in ((300, 300), (40, 300), (300, 7), (2, 2), (1000, 900)):
        a, b = keypoints(n_a), keypoints(n_b)
        same = Keypoints(a.points, a.descriptors.copy(), a.shape)
        for other in (b, same):
            for ratio in (0.6, 0.8, 0.99):
                got = mutual_matches(a, other, ratio=ratio)
                np.testing.assert_array_equal(got, _matches_in_numpy(a, other, ratio))
                compared += len(got)
    assert compared > 1000  # matches were found, not only empty results


def test_mutual_matches_do_not_depend_on_the_keypoints_order():
    # the same keypoints listed in another order (as OpenCV lists them at another
    # threshold) give the same matches, in the same order of positions
    rng = np.random.default_rng(3)
    image = data.camera()[::2, ::2].astype(np.float32) / 255
    moved = np.roll(image, (5, -7), axis=(0, 1))
    full = np.ones(image.shape, bool)
    a = detect_rootsift(image, full, max_keypoints=300, border=3)
    b = detect_rootsift(moved, full, max_keypoints=300, border=3)
    pa, pb = rng.permutation(len(a.points)), rng.permutation(len(b.points))
    a2 = Keypoints(a.points[pa], a.descriptors[pa], a.shape)
    b2 = Keypoints(b.points[pb], b.descriptors[pb], b.shape)
    got, again = mutual_matches(a, b, ratio=0.8), mutual_matches(a2, b2, ratio=0.8)
    assert len(got) >= 100, len(got)
    np.testing.assert_array_equal(a.points[got[:, 0]], a2.points[again[:, 0]])
    np.testing.assert_array_equal(b.points[got[:, 1]], b2.points[again[:, 1]])
