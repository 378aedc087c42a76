"""Training data plumbing: the pair dataset and its batch loader.

The input-space neighbour graph comes from :func:`skhash._knn_graph.knn_graph`.
"""

import torch
from torch.utils.data import Dataset

from ._batch import Batch


class NeighborPairDataset(Dataset):
    """Rows of ``X`` with one of their graph neighbours each, as a :class:`~skhash._batch.Batch`.

    Indexed by a tensor of row indices ``idx`` (a whole batch at once, see
    :class:`BatchLoader`), it returns ``Batch(items=X[idx], labels=y[idx],
    partners=X[j])`` with each ``j`` drawn uniformly from ``neighbors[idx]``
    afresh, from ``generator``. Without a graph the batch has no partners.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32
    y : ndarray of shape (n_samples,), int64
        Class indices; -1 for unlabelled.
    neighbors : ndarray of shape (n_samples, n_neighbors) or None
    generator : torch.Generator, default=None
    """

    def __init__(self, X, y, neighbors=None, generator=None):
        self.X = torch.from_numpy(X)
        self.y = torch.from_numpy(y)
        self.neighbors = None if neighbors is None else torch.from_numpy(neighbors)
        self.generator = generator

    def __len__(self):
        return len(self.X)

    def __getitem__(self, idx):
        idx = torch.as_tensor(idx).reshape(-1)
        if self.neighbors is None:
            return Batch(self.X[idx], self.y[idx])
        rows = self.neighbors[idx]
        pick = torch.randint(rows.shape[1], (len(idx), 1), generator=self.generator)
        partners = rows.gather(1, pick)[:, 0]
        return Batch(self.X[idx], self.y[idx], self.X[partners])


def class_pair_order(labels, generator=None):
    """A random order of the rows in which items of one class come in pairs.

    The label-centroid term only sees classes met twice or more in a batch; with
    many small classes (e.g. 7,553 man pages for 18,000 paragraphs) a random
    batch of 256 rarely holds two items of one class, so the labels go unused.
    Here the labelled rows of each class are cut into consecutive pairs (in a
    random order within the class; a last odd row stays alone) and the pairs and
    the unlabelled rows are shuffled as units, so every paired row shares its
    batch with one of its class (but for a pair cut by a batch boundary); a
    class's last odd row does so only by chance (of a class of three rows, two
    in three rows are paired).

    Parameters
    ----------
    labels : torch.Tensor of shape (n_samples,), int64
        Class indices; negative means unlabelled.
    generator : torch.Generator, default=None
        Source of randomness.

    Returns
    -------
    order : torch.Tensor of shape (n_samples,), int64
        A permutation of the rows. Without labelled rows, exactly
        ``torch.randperm(n_samples, generator=generator)`` (one draw), so an
        unsupervised fit shuffles as it would without pairing.
    """
    n = len(labels)
    order = torch.randperm(n, generator=generator)
    shuffled = labels[order]
    if not bool((shuffled >= 0).any()):
        return order
    # group the classes (stable: random order within a class), unlabelled rows first
    by_class = torch.argsort(shuffled, stable=True)
    grouped = shuffled[by_class]
    position = torch.arange(n)
    new_class = torch.ones(n, dtype=torch.bool)
    new_class[1:] = grouped[1:] != grouped[:-1]
    class_start = torch.cummax(torch.where(new_class, position, 0), dim=0).values
    # a unit starts at every unlabelled row and at every even rank within a class
    starts_unit = (grouped < 0) | ((position - class_start) % 2 == 0)
    unit = torch.cumsum(starts_unit.to(torch.int64), dim=0) - 1
    unit_order = torch.rand(int(unit[-1]) + 1, generator=generator)
    # stable sort on the units' random keys keeps each pair together and in order
    return order[by_class[torch.argsort(unit_order[unit], stable=True)]]


class BatchLoader:
    """Minimal skorch iterator that slices whole batches from the dataset.

    A drop-in for ``torch.utils.data.DataLoader`` as skorch's ``iterator_train``:
    one tensor gather per batch instead of one Python call per row. Yields
    ``(batch, None)``: skorch's ``(X, y)`` with the :class:`~skhash._batch.Batch`
    as ``X`` (it carries the labels).

    Parameters
    ----------
    dataset : NeighborPairDataset
    batch_size : int, default=256
    shuffle : bool, default=False
    generator : torch.Generator, default=None
        Source of the shuffling order.
    drop_last : bool, default=False
        Skip a last incomplete batch (batch norm needs two rows or more).
    """

    def __init__(self, dataset, batch_size=256, shuffle=False, generator=None, drop_last=False):
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.drop_last = drop_last

    def __len__(self):
        n, b = len(self.dataset), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            order = class_pair_order(self.dataset.y, self.generator)
        else:
            order = torch.arange(n)
        for batch in range(len(self)):
            yield (
                self.dataset[order[batch * self.batch_size : (batch + 1) * self.batch_size]],
                None,
            )
