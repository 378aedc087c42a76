"""skhash.plotting: optional matplotlib, figures from history_ and codes."""

import subprocess
import sys

import numpy as np
import pytest

from skhash.plotting import (
    hamming_distance_pairs,
    plot_code_histograms,
    plot_encoder_distances,
    plot_hamming_distances,
    plot_training_curves,
)
from tests.helpers import FAST


def test_importing_skhash_does_not_import_matplotlib():
    code = (
        "import sys, skhash, skhash.plotting, skhash.callbacks; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_clear_error_without_matplotlib(fitted, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        plot_training_curves(fitted)


def test_training_curves(fitted, plt):
    axes = plot_training_curves(fitted)
    assert len(axes) == 3
    labels = [line.get_label() for line in axes[0].lines]
    assert labels == ["total", "rdmreg", "anticollapse", "neighbor"]
    np.testing.assert_allclose(axes[1].lines[0].get_ydata(), fitted.history_[:, "vertex_dist"])
    assert {line.get_label() for line in axes[2].lines} == {"ones_min", "ones_max", "max_corr"}
    # same from the history or from plain rows, and on given axes
    _, given = plt.subplots(1, 3)
    assert plot_training_curves(list(fitted.history_), axes=given)[0] is given[0]


def test_training_curves_rejects_bad_input(plt):
    with pytest.raises(ValueError, match="history"):
        plot_training_curves([])
    with pytest.raises(ValueError, match="3 Axes"):
        plot_training_curves([{"epoch": 1, "train_loss": 1.0}], axes=plt.subplots(1, 2)[1])


@pytest.mark.parametrize("kind", ["heatmap", "lines"])
def test_code_histograms(fitted, plt, kind):
    ax = plot_code_histograms(fitted, kind=kind)
    if kind == "heatmap":
        shares = ax.collections[0].get_array()
        assert shares.size == FAST["max_epochs"] * 12
        np.testing.assert_allclose(np.asarray(shares).reshape(-1, 12).sum(1), 1.0)
    else:
        assert len(ax.patches) == FAST["max_epochs"]


def test_code_histograms_needs_counts(plt):
    with pytest.raises(ValueError, match="hist_counts"):
        plot_code_histograms([{"epoch": 1, "train_loss": 1.0}])
    with pytest.raises(ValueError, match="kind"):
        plot_code_histograms([{"epoch": 1, "hist_counts": [1] * 12}], kind="bars")


def test_code_histograms_bad_input_is_named(plt):
    rows = [{"epoch": 1, "hist_counts": [1] * 12}, {"epoch": 2, "hist_counts": [2] * 12}]
    with pytest.raises(ValueError, match="hist_counts.*same number of bins"):
        plot_code_histograms([*rows, {"epoch": 3, "hist_counts": [1] * 10}])
    with pytest.raises(ValueError, match="hist_counts.*same number of bins"):
        plot_code_histograms([{"epoch": 1, "hist_counts": []}])
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="max_lines must be an int >= 1"):
            plot_code_histograms(rows, kind="lines", max_lines=bad)
    with pytest.raises(ValueError, match="value_range"):
        plot_code_histograms(rows, value_range=(1.5, -1.5))
    assert not plt.get_fignums()


def test_hamming_distance_pairs():
    codes = np.array([[0, 0, 0, 0], [0, 0, 0, 1], [1, 1, 1, 1]], dtype=np.uint8)
    near, far = hamming_distance_pairs(codes, [[1], [0], [1]], n_random_pairs=500, random_state=0)
    np.testing.assert_array_equal(near, [1, 1, 3])
    assert set(far) <= {1, 3, 4}  # never a code with itself
    packed_near, packed_far = hamming_distance_pairs(
        np.packbits(codes, axis=1),
        [[1], [0], [1]],
        packed=True,
        n_random_pairs=500,
        random_state=0,
    )
    np.testing.assert_array_equal(packed_near, near)
    np.testing.assert_array_equal(packed_far, far)
    # negative indices are padding
    near, _ = hamming_distance_pairs(codes, [[1, -1], [0, 2], [-1, -1]], n_random_pairs=1)
    np.testing.assert_array_equal(near, [1, 1, 3])  # (0, 1), (1, 0), (1, 2)


def test_hamming_distance_pairs_validates():
    codes = np.zeros((3, 4), dtype=np.uint8)
    with pytest.raises(ValueError, match="0/1"):
        hamming_distance_pairs(codes + 2, [[1]])
    with pytest.raises(ValueError, match="beyond"):
        hamming_distance_pairs(codes, [[5], [0], [1]])
    with pytest.raises(ValueError, match="integer"):
        hamming_distance_pairs(codes, [[0.5], [0.0], [1.0]])


def test_n_random_pairs_is_checked(plt):
    codes = np.array([[0, 0, 0, 0], [0, 0, 0, 1], [1, 1, 1, 1]], dtype=np.uint8)
    neighbors = [[1], [0], [1]]
    near, far = hamming_distance_pairs(codes, neighbors, n_random_pairs=0)
    assert far.shape == (0,) and far.dtype == np.int64
    for bad in (-1, 2.5, True, None, "10"):
        with pytest.raises((TypeError, ValueError), match="n_random_pairs must be an int"):
            hamming_distance_pairs(codes, neighbors, n_random_pairs=bad)
    # the plot compares the two distributions: it needs pairs of both kinds
    for bad in (0, -1, 2.5, None):
        with pytest.raises((TypeError, ValueError), match="n_random_pairs must be an int >= 1"):
            plot_hamming_distances(codes, neighbors, n_random_pairs=bad)
    with pytest.raises(ValueError, match="no neighbour pair"):
        plot_hamming_distances(codes, [[-1], [-1], [-1]], n_random_pairs=10)
    assert not plt.get_fignums()  # nothing drawn


def test_hamming_distance_plots(fitted, digits, plt):
    X, _ = digits
    ax = plot_hamming_distances(
        fitted.transform(X[:300]), np.arange(300)[:, None] % 7, random_state=0
    )
    assert len(ax.patches) == 2 and ax.get_title() == "Hamming distances"
    ax = plot_encoder_distances(
        fitted, X[:300], n_neighbors=5, n_random_pairs=2000, random_state=0
    )
    assert ax.get_title() == "BinaryHashEncoder"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    near = float(legend[1].split("median ")[1].rstrip(")"))
    far = float(legend[0].split("median ")[1].rstrip(")"))
    assert near < far  # input-space neighbours are closer in Hamming space than random pairs


def test_training_curves_of_an_unfitted_encoder_is_a_clear_error(plt):
    from sklearn.exceptions import NotFittedError

    from skhash import BinaryHashEncoder

    with pytest.raises(NotFittedError, match="no training history.*fit it first"):
        plot_training_curves(BinaryHashEncoder())
    with pytest.raises(NotFittedError, match="no training history"):
        plot_code_histograms(BinaryHashEncoder())
