"""scikit-learn conventions of the encoders and the plotting helpers, as a user meets them."""

import numpy as np
import pytest

from skhash import BinaryHashEncoder, SimHash
from skhash.plotting import plot_code_histograms, plot_encoder_distances


@pytest.mark.parametrize("device", ["cpu", "cpu:0"])
def test_a_cpu_device_is_tagged_deterministic(device):
    # "cpu:0" is torch's CPU as much as "cpu": fits on it are just as reproducible
    assert not BinaryHashEncoder(device=device).__sklearn_tags__().non_deterministic


@pytest.mark.parametrize("device", ["cuda", "cuda:1", "mps"])
def test_an_accelerator_is_tagged_non_deterministic(device):
    assert BinaryHashEncoder(device=device).__sklearn_tags__().non_deterministic


@pytest.mark.parametrize("value_range", [1.5, (-1.5,), (-1.5, 0.0, 1.5)])
def test_code_histograms_name_a_value_range_that_is_not_a_pair(value_range):
    rows = [{"epoch": 1, "hist_counts": [1, 2, 3]}]
    with pytest.raises(ValueError, match="value_range"):
        plot_code_histograms(rows, value_range=value_range)


def test_encoder_distances_check_the_encoder_before_the_exact_search(monkeypatch):
    # the exact search is quadratic in the rows: an unfitted encoder must fail first
    from sklearn.exceptions import NotFittedError
    from sklearn.neighbors import NearestNeighbors

    def search(*args, **kwargs):
        raise AssertionError("the exact neighbour search ran before the encoder was checked")

    monkeypatch.setattr(NearestNeighbors, "kneighbors", search)
    X = np.random.default_rng(0).normal(size=(20, 4))
    with pytest.raises(NotFittedError):
        plot_encoder_distances(SimHash(n_bits=8), X)


def test_an_empty_title_is_kept(plt):
    # None gives the generic title; "" is a title too (no title), as matplotlib's
    codes = np.random.default_rng(0).integers(0, 2, size=(30, 8), dtype=np.uint8)
    neighbors = np.arange(30)[:, None][::-1].copy()
    from skhash.plotting import plot_hamming_distances

    assert plot_hamming_distances(codes, neighbors, title="").get_title() == ""
    assert plot_hamming_distances(codes, neighbors).get_title() == "Hamming distances"
    X = np.random.default_rng(0).normal(size=(30, 4))
    encoder = SimHash(n_bits=8, random_state=0).fit(X)
    assert plot_encoder_distances(encoder, X, title="").get_title() == ""
    assert plot_encoder_distances(encoder, X).get_title() == "SimHash"
