"""Training data plumbing: the input-space neighbour graph and the pair dataset."""

import numpy as np
import torch
from torch.utils.data import Dataset

from ._batch import Batch

# Above this many rows the exact O(n^2) graph gets slow on a laptop; NNDescent
# builds an approximate one in near-linear time.
EXACT_GRAPH_MAX_SAMPLES = 60_000


def knn_graph(X, n_neighbors, random_state=None, chunk_size=2048):
    """Indices of each row's nearest other rows by Euclidean distance.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32
    n_neighbors : int
        Neighbours per row (clipped to ``n_samples - 1``).
    random_state : int, default=None
        Seed for the approximate search used on large inputs.
    chunk_size : int, default=2048
        Rows per block of the exact search, bounding memory.

    Returns
    -------
    neighbors : ndarray of shape (n_samples, n_neighbors), int64
        Row ``i`` never contains ``i``.
    """
    n = len(X)
    k = min(n_neighbors, n - 1)
    if n > EXACT_GRAPH_MAX_SAMPLES:
        from pynndescent import NNDescent

        index = NNDescent(X, n_neighbors=max(k + 1, 15), random_state=random_state)
        return index.neighbor_graph[0][:, 1 : k + 1].astype(np.int64)
    data = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    sq_norms = (data * data).sum(1)
    out = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, chunk_size):
        block = data[start : start + chunk_size]
        # squared distance up to the per-row constant |x_i|^2
        dist = sq_norms[None, :] - 2 * block @ data.T
        rows = torch.arange(len(block))
        dist[rows, rows + start] = float("inf")
        out[start : start + chunk_size] = dist.topk(k, dim=1, largest=False).indices.numpy()
    return out


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


class BatchLoader:
    """Minimal skorch iterator that slices whole batches from the dataset.

    A drop-in for ``torch.utils.data.DataLoader`` as skorch's ``iterator_train``:
    one tensor gather per batch instead of one Python call per row. Yields
    ``(batch, None)``: skorch's ``(X, y)`` with the :class:`~skhash._batch.Batch`
    as ``X`` (it carries the labels).

    Parameters
    ----------
    dataset : NeighborPairDataset
    batch_size : int
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
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for batch in range(len(self)):
            yield (
                self.dataset[order[batch * self.batch_size : (batch + 1) * self.batch_size]],
                None,
            )
