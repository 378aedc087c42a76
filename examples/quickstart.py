"""Quickstart: learn 64-bit codes for scikit-learn's digits and search them by Hamming distance.

Fits :class:`skhash.BinaryHashEncoder` unsupervised and supervised, then compares a
k-nearest-neighbour classifier on the codes (:class:`skhash.HammingKNeighborsClassifier`)
with one on the float features, and the bytes each item needs.

    python examples/quickstart.py          # full run, under half a minute on 2 cores
    SKHASH_FAST=1 python examples/quickstart.py   # a few seconds, for the tests
"""

import os
import time

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from skhash import BinaryHashEncoder, HammingKNeighborsClassifier

FAST = bool(os.environ.get("SKHASH_FAST"))
N_BITS = 64

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)

float_knn = KNeighborsClassifier(n_neighbors=5).fit(X_train, y_train)
print(
    f"float kNN      accuracy {float_knn.score(X_test, y_test):.3f}   "
    f"{X.shape[1] * 4} bytes/item (float32)"
)

for name, labels in [("unsupervised", None), ("supervised", y_train)]:
    encoder = BinaryHashEncoder(n_bits=N_BITS, max_epochs=3 if FAST else 30, random_state=0)
    start = time.perf_counter()
    encoder.fit(X_train, labels)
    seconds = time.perf_counter() - start
    knn = HammingKNeighborsClassifier(n_neighbors=5, packed=True)
    knn.fit(encoder.packbits(X_train), y_train)
    accuracy = knn.score(encoder.packbits(X_test), y_test)
    print(
        f"Hamming kNN    accuracy {accuracy:.3f}   {N_BITS // 8} bytes/item "
        f"({name} codes, fit {seconds:.1f} s, "
        f"vertex distance {encoder.history_[-1, 'vertex_dist']:.3f})"
    )
