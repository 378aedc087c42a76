"""Unsupervised Hamming neighbours index (scikit-learn's ``NearestNeighbors`` analogue)."""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

from .._validation import fit_context
from ._base import (
    HammingNeighborsBase,
    KNeighborsMixin,
    RadiusNeighborsMixin,
)

__all__ = ["HammingNeighbors"]


class HammingNeighbors(KNeighborsMixin, RadiusNeighborsMixin, HammingNeighborsBase):
    """Nearest neighbours of binary codes in Hamming distance.

    Stores bit-packed codes and answers k-nearest-neighbour and Hamming-ball
    queries, either exactly with a compiled popcount kernel (``"brute"``) or
    approximately by walking a k-nearest-neighbour graph of the codes
    (``"nndescent"``). It is an index, not a classifier: for a k-NN vote on
    the codes use :class:`~skhash.HammingKNeighborsClassifier`.

    Parameters
    ----------
    n_neighbors : int, default=5
        Number of neighbours for :meth:`kneighbors`.

    algorithm : {"auto", "brute", "nndescent"}, default="auto"
        ``"brute"`` is exact: it compares each query with every code, 64 bits
        per ``popcnt``, in parallel over queries, keeping the ``k`` best in a
        bounded heap (memory ``O(n_queries * k)``), and breaks distance ties
        by index. ``"nndescent"`` builds the codes' k-nearest-neighbour graph
        in :meth:`fit` (with :class:`pynndescent.NNDescent`,
        ``metric="bit_hamming"``, for large ``n``; exactly with the popcount
        kernel for small ``n``); a query starts from the nearest of about
        ``4 * sqrt(n_samples_fit)`` entry codes, at least one in every
        connected component of the graph, and walks the graph best-first
        (see ``ef_search``); from 100,000 codes on, from the best codes of a
        walk of an upper layer instead (the graph of one code in 16, see
        ``upper_rows_``). ``"auto"`` uses ``"nndescent"`` from 1,000,000
        fitted codes on, ``"brute"`` below (see ``docs/benchmarks.md``).
        :meth:`radius_neighbors` is always exact.

    packed : bool, default=False
        If False, ``X`` holds one 0/1 value per bit, as
        ``BinaryHashEncoder.transform`` returns. If True, ``X`` holds bytes of
        packed bits, as ``np.packbits(bits, axis=1)`` returns, and
        ``n_features_in_`` counts bytes.

    binarize : float or None, default=None
        As in :class:`~sklearn.naive_bayes.BernoulliNB`: if None, ``X`` must
        already be 0/1 bits (other values raise a ValueError); otherwise the
        bits are ``X > binarize``. Only with ``packed=False``.

    n_neighbors_graph : int, default=24
        Neighbours per code in the graph, the code itself included
        (pynndescent's ``n_neighbors``). The search graph adds the reverse
        edges and keeps each code's ``2 * n_neighbors_graph`` nearest links.
        Larger graphs raise recall, build time and memory.

    ef_search : int or "auto", default="auto"
        Codes kept while walking the graph (HNSW's ``efSearch``; raised to
        the number of neighbours asked for). Larger is slower and more
        accurate. ``"auto"`` is 16 for codes of up to 64 bits and 32 for
        longer ones, whose distances tie less and need a wider walk.

    n_trees : int or None, default=None
        Random-projection trees initialising NN-descent; None lets
        pynndescent choose from the data size.

    n_iters : int or None, default=None
        Maximum NN-descent iterations; None lets pynndescent choose.

    n_jobs : int or None, default=None
        Threads for the exact kernel, the index build and batched
        approximate queries. None and -1 use all of numba's threads, -2 all
        but one; 0 is not allowed.

    random_state : int, RandomState instance or None, default=None
        Seed of the graph build and of the choice of entry codes.

    Attributes
    ----------
    codes_ : ndarray of shape (n_samples_fit, ceil(n_bits_ / 8)), dtype uint8
        The fitted codes, bit-packed, C-contiguous.

    n_bits_ : int
        Code length in bits (``8 * n_features_in_`` when ``packed=True``).

    n_samples_fit_ : int
        Number of fitted codes.

    n_features_in_ : int
        Number of columns of ``X`` seen in :meth:`fit`.

    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the columns of ``X`` seen in :meth:`fit`; defined only when
        they are all strings (a DataFrame's).

    fit_method_ : {"brute", "nndescent"}
        The backend used by :meth:`kneighbors`: ``algorithm``, resolved for
        ``"auto"``; ``"brute"`` when ``n_samples_fit_ <= n_neighbors_graph``,
        too few codes for a graph.

    graph_indptr_ : ndarray of shape (n_samples_fit + 1,), int64, or None
        With ``graph_indices_``, the CSR adjacency of the search graph when
        ``fit_method_ == "nndescent"``, else None.

    graph_indices_ : ndarray of int32 or None
        Graph neighbours of code ``i``:
        ``graph_indices_[graph_indptr_[i]:graph_indptr_[i + 1]]``, nearest
        first.

    entry_points_ : ndarray of int64 or None
        Rows every graph search starts from: the nearest of them to the query
        seed the walk (below 100,000 codes), or they start a walk of the upper
        layer whose ``ef_search`` best codes seed the walk of the full graph.

    upper_rows_ : ndarray of int64 or None
        From 100,000 codes on, the rows of the upper layer: one code in 16,
        at least one of every connected component of the graph (HNSW's first
        level); None below, or without a graph.

    upper_indptr_, upper_indices_ : ndarray or None
        CSR adjacency of the upper layer's own k-NN graph (``n_neighbors_graph``
        neighbours and reverse edges), by position in ``upper_rows_``.

    See Also
    --------
    HammingKNeighborsClassifier : A k-NN vote over the same index.
    sklearn.neighbors.NearestNeighbors : The same interface on real vectors.

    Examples
    --------
    >>> import numpy as np
    >>> from skhash import HammingNeighbors
    >>> bits = np.array([[0, 0, 0, 0], [0, 0, 0, 1], [1, 1, 1, 1]], dtype=np.uint8)
    >>> nn = HammingNeighbors(n_neighbors=2).fit(bits)
    >>> distances, indices = nn.kneighbors([[0, 0, 1, 1]])
    >>> distances
    array([[1, 2]], dtype=int32)
    >>> indices
    array([[1, 0]])
    """

    @fit_context()
    def fit(self, X, y=None):
        """Index the codes ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            0/1 bits, bytes of packed bits if ``packed=True``, or real values
            if ``binarize`` is set.

        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : HammingNeighbors
            The fitted estimator.
        """
        self._fit(X)
        return self
