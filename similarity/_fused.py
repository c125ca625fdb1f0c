"""Compiled element-wise kernels (Numba): one pass over memory where NumPy needs ten.

Imported lazily by the metrics that use them, so that importing Atelier does not
load the compiler; the first call in a process compiles (or loads from Numba's
on-disk cache) in about a second.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["chamfer_lookup", "cross_terms", "cwssim_band", "cwssim_map", "ssim_rows"]


@numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
def _index_row(bl, mca, mcb, va, vb, ca, cb, half_c1, out):  # noqa: ANN001
    # IEEE arithmetic, no reassociation: for identical inputs every factor of the
    # numerator is exactly half its denominator's, so the index is exactly 1/4.
    for j in range(bl.shape[0]):
        mua = mca[j] + ca
        mub = mcb[j] + cb
        q = mua * mub + half_c1
        m = (mua * mua + half_c1) + (mub * mub + half_c1)
        cov = bl[j] - mca[j] * mcb[j]
        out[j] = (q * cov) / (m * (va[j] + vb[j]))


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def _sum_row(row):  # noqa: ANN001
    s = 0.0
    for j in range(row.shape[0]):
        s += row[j]
    return s


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def _masked_sum_row(row, ma, mb):  # noqa: ANN001
    s = 0.0
    k = 0
    for j in range(row.shape[0]):
        if ma[j] and mb[j]:
            s += row[j]
            k += 1
    return s, k


@numba.njit(cache=True, nogil=True, error_model="numpy")
def ssim_rows(bl, mca, mcb, va, vb, ca, cb, half_c1, mask_a, mask_b, full, out, write):  # noqa: ANN001
    """Sum and count of the SSIM index / 4 over pixels valid in both images.

    ``bl`` is blur(centred_a * centred_b) + C2/2; ``mc*`` the blurred centred images,
    ``c*`` their centres (scalars), ``v*`` the local variances + C2/2. When ``write``,
    the index / 4 at every pixel goes to ``out`` (else ``out`` is one row of scratch).
    """
    rows, cols = bl.shape
    total = 0.0
    count = 0
    for i in range(rows):
        row = out[i] if write else out[0]
        _index_row(bl[i], mca[i], mcb[i], va[i], vb[i], ca, cb, half_c1, row)
        if full:
            total += _sum_row(row)
            count += cols
        else:
            s, k = _masked_sum_row(row, mask_a[i], mask_b[i])
            total += s
            count += k
    return total, count


@numba.njit(cache=True, nogil=True, error_model="numpy")
def cross_terms(ca, cb, re, im):  # noqa: ANN001
    """Real and imaginary parts of ``ca * conj(cb)`` (complex64 in, float32 out).

    Written out as ``ar br + ai bi`` and ``ai br - ar bi`` with no fused multiply-add,
    the same float32 operations as the energy ``ar ar + ai ai``: for ``ca == cb`` the
    real part equals the energy and the imaginary part is exactly 0.
    """
    rows, cols = ca.shape
    for i in range(rows):
        for j in range(cols):
            ar = ca[i, j].real
            ai = ca[i, j].imag
            br = cb[i, j].real
            bi = cb[i, j].imag
            re[i, j] = ar * br + ai * bi
            im[i, j] = ai * br - ar * bi


@numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
def _cwssim_row(re, im, ea, eb, k, out):  # noqa: ANN001
    # IEEE float64, no reassociation: for identical inputs im is 0, re equals both
    # energies, and numerator and denominator are the same float.
    for j in range(re.shape[0]):
        r = np.float64(re[j])
        m = np.float64(im[j])
        v = (2.0 * np.sqrt(r * r + m * m) + k) / ((np.float64(ea[j]) + np.float64(eb[j])) + k)
        out[j] = min(1.0, max(0.0, v))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def cwssim_map(re, im, ea, eb, k, out):  # noqa: ANN001
    """The local CW-SSIM index, clipped to [0, 1], at every pixel into ``out`` (float64)."""
    for i in range(re.shape[0]):
        _cwssim_row(re[i], im[i], ea[i], eb[i], k, out[i])


@numba.njit(cache=True, nogil=True, error_model="numpy")
def cwssim_band(re, im, ea, eb, k, mask_a, mask_b):  # noqa: ANN001
    """Sum and count of the local CW-SSIM index, clipped to [0, 1], over pixels valid
    in both: ``(2 |sum ca conj(cb)| + k) / (sum |ca|^2 + sum |cb|^2 + k)``, in float64."""
    rows, cols = re.shape
    row = np.empty(cols, np.float64)
    total = 0.0
    count = 0
    for i in range(rows):
        _cwssim_row(re[i], im[i], ea[i], eb[i], k, row)
        s, c = _masked_sum_row(row, mask_a[i], mask_b[i])
        total += s
        count += c
    return total, count


@numba.njit(cache=True, nogil=True, error_model="numpy")
def chamfer_lookup(x, y, bins, sx, sy, distance, valid, step, out):  # noqa: ANN001
    """The contour test's distance lookup, for every shift of a set of points.

    ``out[s, p]``: the distance stored at the pixel nearest to point ``p`` moved by
    ``(sx[s], sy[s])`` in the map of its orientation bin, times ``step``; NaN where
    that pixel is off the map or off its content. The same floats as the NumPy
    expression it replaces (rounding to even, the same products), without the
    shifted copies of the points that broadcasting makes.
    """
    n_bins, n_rows, n_cols = distance.shape
    for s in range(sx.shape[0]):
        for p in range(x.shape[0]):
            r = np.rint(y[p] + sy[s])
            c = np.rint(x[p] + sx[s])
            # in float: NaN and huge values (a degenerate map) fail it as the integers would
            if 0.0 <= r < n_rows and 0.0 <= c < n_cols:
                ri, ci = int(r), int(c)
                if valid[ri, ci]:
                    out[s, p] = distance[bins[p], ri, ci] * step
                    continue
            out[s, p] = np.nan
