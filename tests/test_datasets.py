import numpy as np
import pytest
import torch

from skhash._datasets import BatchLoader, NeighborPairDataset, class_pair_order


def _order(labels, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return class_pair_order(torch.as_tensor(labels, dtype=torch.int64), generator).numpy()


def test_unlabelled_rows_shuffle_exactly_as_randperm():
    expected = torch.randperm(50, generator=torch.Generator().manual_seed(3)).numpy()
    np.testing.assert_array_equal(_order(np.full(50, -1), seed=3), expected)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classes_come_in_adjacent_pairs(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(-1, 40, 301)  # many small classes and some unlabelled rows
    order = _order(labels, seed)
    assert sorted(order) == list(range(len(labels)))
    # walk the order: a labelled row opens a pair with the next row of its class
    paired, i = np.zeros(len(labels), dtype=int), 0
    while i < len(order):
        label = labels[order[i]]
        if i + 1 < len(order) and label >= 0 and label == labels[order[i + 1]]:
            paired[[order[i], order[i + 1]]] += 1
            i += 2
        else:
            i += 1
    # every class of size c >= 2 has floor(c / 2) adjacent pairs
    for label in np.unique(labels[labels >= 0]):
        members = np.flatnonzero(labels == label)
        assert paired[members].sum() >= 2 * (len(members) // 2)


def test_order_is_seeded_and_varies_between_seeds():
    labels = np.repeat(np.arange(20), 3)
    np.testing.assert_array_equal(_order(labels, 5), _order(labels, 5))
    assert not np.array_equal(_order(labels, 5), _order(labels, 6))


def test_shuffled_batches_hold_same_class_pairs():
    n = 512
    labels = np.arange(n) // 2  # 256 classes of two rows: a random batch rarely holds both
    X = np.random.default_rng(0).normal(size=(n, 4)).astype(np.float32)
    dataset = NeighborPairDataset(X, labels.astype(np.int64))
    loader = BatchLoader(dataset, 64, shuffle=True, generator=torch.Generator().manual_seed(0))
    together = 0
    for batch, _ in loader:
        _, counts = batch.labels.unique(return_counts=True)
        together += int((counts == 2).sum())
    assert together >= 250  # of 256 classes; only pairs cut by a batch border are split
