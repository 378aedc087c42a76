"""Fast guard of the method's convergence (issue 4's figures, at 16 bits and few epochs)."""

import numpy as np
import pytest

from skhash import BinaryHashEncoder


def expected_distinct(n, n_bits):
    m = 2.0**n_bits
    return m * -np.expm1(n * np.log1p(-1 / m))


@pytest.fixture(scope="module")
def gaussian_codes():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4000, 64), dtype=np.float32)
    X_new = rng.standard_normal((3000, 64), dtype=np.float32)
    enc = BinaryHashEncoder(n_bits=16, max_epochs=12, random_state=0).fit(X)
    return enc.embed(X_new), enc.transform(X_new)


def test_outputs_reach_the_vertices(gaussian_codes):
    z, _ = gaussian_codes
    assert np.abs(1 - np.abs(z)).mean() <= 0.1


def test_bits_balanced_and_uncorrelated(gaussian_codes):
    _, codes = gaussian_codes
    ones = codes.mean(0)
    assert ones.min() >= 0.4 and ones.max() <= 0.6
    corr = np.corrcoef(codes.astype(float), rowvar=False)
    np.fill_diagonal(corr, 0)
    assert np.abs(corr).max() <= 0.15


def test_no_dependent_triples(gaussian_codes):
    _, codes = gaussian_codes
    s = codes.astype(float) * 2 - 1
    worst = 0.0
    for i in range(16):
        for j in range(i + 1, 16):
            prod = s[:, i] * s[:, j]
            others = np.delete(np.arange(16), [i, j])
            c = np.corrcoef(np.column_stack([prod, s[:, others]]), rowvar=False)[0, 1:]
            worst = max(worst, np.abs(c).max())
    assert worst <= 0.15


def test_distinct_items_get_distinct_codes(gaussian_codes):
    _, codes = gaussian_codes
    distinct = len(np.unique(np.packbits(codes, axis=1), axis=0))
    assert distinct >= 0.97 * expected_distinct(len(codes), 16)
