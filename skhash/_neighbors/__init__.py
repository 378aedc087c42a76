"""Hamming-distance nearest neighbours on binary codes: an index and a classifier."""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

from ._classification import HammingKNeighborsClassifier
from ._unsupervised import HammingNeighbors

__all__ = ["HammingKNeighborsClassifier", "HammingNeighbors"]
