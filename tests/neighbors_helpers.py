"""Shared data and reference searches of the neighbours tests."""

import numpy as np
from scipy.spatial.distance import cdist


def clustered_codes(n_samples, n_bits, centres, flips, rng):
    """Codes near random centres: each is a centre with ``flips`` bits flipped."""
    codes = centres[rng.integers(0, len(centres), n_samples)].copy()
    rows = np.arange(n_samples)
    for _ in range(flips):
        codes[rows, rng.integers(0, n_bits, n_samples)] ^= 1
    return codes


def reference_knn(queries, database, k, exclude_self=False):
    """k-NN by scipy's Hamming distance, ties by index (a stable sort)."""
    n_bits = queries.shape[1]
    dist = np.rint(cdist(queries, database, "hamming") * n_bits).astype(np.int64)
    if exclude_self:
        np.fill_diagonal(dist, n_bits + 1)
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(dist, order, axis=1), order


def clustered_data():
    """4,000 codes and 200 queries of 64 bits around 40 centres, 6 bits flipped each."""
    rng = np.random.default_rng(0)
    centres = rng.integers(0, 2, (40, 64), dtype=np.uint8)
    return clustered_codes(4000, 64, centres, 6, rng), clustered_codes(200, 64, centres, 6, rng)


def uniform_data():
    """3,000 uniform random 64-bit codes and 200 queries."""
    rng = np.random.default_rng(1)
    database = rng.integers(0, 2, (3000, 64), dtype=np.uint8)
    queries = rng.integers(0, 2, (200, 64), dtype=np.uint8)
    return database, queries
