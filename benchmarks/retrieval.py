"""Two-stage retrieval: recall@10, QPS and bytes/item against the number of candidates.

On the fortunes and man-page embeddings in ``../shared/data`` (2,000 held-out queries,
the rest indexed), the ground truth is the exact top 10 by cosine. Rows, one per
candidate multiplier ``m`` (``n_candidates = m * 10``):

- ``skhash-B``: :class:`~skhash.HashIndex` with a ``BinaryHashEncoder(n_bits=B)``,
  float16 rescoring (``+asym``: candidates by the asymmetric distance);
- ``sign-384``: the sign of each embedding coordinate (sentence-transformers'
  ``quantize_embeddings(..., "ubinary")``) + the same rescoring;
- ``pcaitq-64``: PCA-ITQ codes + the same rescoring;
- ``faiss-hnsw``: faiss ``IndexBinaryHNSW`` (M=32, efSearch = candidates) over the
  skhash-64 codes + float16 rescoring;
- ``float``: exact float32 inner-product search (faiss ``IndexFlatIP``).

RAM bytes/item counts what the search keeps in memory (codes, int64 ids, graph links);
disk bytes/item adds the float16 rescoring vectors (memory-mapped after ``load``).
QPS is one batch of 2,000 queries, after one warm-up query, on whatever threads numba
and faiss use (say the machine with the numbers).

    python benchmarks/retrieval.py [--data fortunes manpages] [--bits 64] [--plot FILE]
"""

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.frozen import FrozenEstimator

from skhash import PCAITQ, BinaryHashEncoder, HashIndex

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MULTIPLIERS = (1, 2, 5, 10, 20, 30, 50, 100)
K = 10
N_QUERIES = 2000


class SignBits(TransformerMixin, BaseEstimator):
    """Bit j is ``x_j > 0`` (sentence-transformers' binary quantisation)."""

    def fit(self, X, y=None):
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        return (np.asarray(X) > 0).astype(np.uint8)


def load(name, seed=0):
    X = np.load(DATA / f"{name}_minilm.npz")["X"].astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(X))
    return X[order[N_QUERIES:]], X[order[:N_QUERIES]]


def exact_top(database, queries, k=K):
    import faiss

    index = faiss.IndexFlatIP(database.shape[1])
    index.add(database)
    start = time.perf_counter()
    _, top = index.search(queries, k)
    return top, len(queries) / (time.perf_counter() - start)


def recall(truth, found):
    return np.mean([len(set(t) & set(f)) / len(t) for t, f in zip(truth, found, strict=True)])


def timed(fn, queries):
    fn(queries[:1])  # warm-up (numba compiled, caches)
    start = time.perf_counter()
    out = fn(queries)
    return out, len(queries) / (time.perf_counter() - start)


def index_rows(name, index, queries, truth, label, graph_bytes=0.0):
    rows = []
    ram = index.codes_.shape[1] + 8 + graph_bytes
    disk = ram + (0 if index.vectors_ is None else index.vectors_[0].nbytes)
    for m in MULTIPLIERS:
        index.set_params(n_candidates=m)
        found, qps = timed(lambda q: index.kneighbors(q, K, return_distance=False), queries)
        rows.append((name, label, m, recall(truth, found), qps, ram, disk))
    return rows


def hnsw_rows(name, index, queries, truth):
    """faiss IndexBinaryHNSW candidates over the same codes, then float16 rescoring."""
    import faiss

    n_bits = index.n_bits_
    hnsw = faiss.IndexBinaryHNSW(n_bits, 32)
    hnsw.add(np.ascontiguousarray(index.codes_))
    vectors = np.asarray(index.vectors_)
    links = faiss.serialize_index_binary(hnsw).size - index.codes_.nbytes
    rows = []
    for m in MULTIPLIERS:
        n_cand = m * K
        hnsw.hnsw.efSearch = max(n_cand, 16)

        def search(q, n_cand=n_cand):
            codes = index._encode(q)[0]
            _, cand = hnsw.search(codes, n_cand)
            cand = np.where(cand < 0, 0, cand)
            qn = q / np.linalg.norm(q, axis=1, keepdims=True)
            sims = np.einsum("qcd,qd->qc", vectors[cand].astype(np.float32), qn)
            return np.take_along_axis(cand, np.argsort(-sims, axis=1)[:, :K], 1)

        found, qps = timed(search, queries)
        ram = index.codes_.shape[1] + 8 + links / len(vectors)
        rows.append((name, "faiss-hnsw", m, recall(truth, found), qps, ram, ram + 768))
    return rows


def run(name, bits, asymmetric):
    database, queries = load(name)
    truth, float_qps = exact_top(database, queries)
    rows = [(name, "float", 0, 1.0, float_qps, database[0].nbytes, database[0].nbytes)]
    for n_bits in bits:
        start = time.perf_counter()
        encoder = BinaryHashEncoder(n_bits=n_bits, random_state=0).fit(database)
        print(f"[{name}] encoder {n_bits} bits fitted in {time.perf_counter() - start:.0f} s")
        index = HashIndex(encoder=FrozenEstimator(encoder)).fit(database)
        rows += index_rows(name, index, queries, truth, f"skhash-{n_bits}")
        if asymmetric:
            index.set_params(asymmetric=True)
            rows += index_rows(name, index, queries, truth, f"skhash-{n_bits}+asym")
            index.set_params(asymmetric=False)
        if n_bits == 64:
            rows += hnsw_rows(name, index, queries, truth)
    rows += index_rows(
        name, HashIndex(encoder=SignBits()).fit(database), queries, truth, "sign-384"
    )
    itq = HashIndex(encoder=PCAITQ(n_bits=64, random_state=0)).fit(database)
    rows += index_rows(name, itq, queries, truth, "pcaitq-64")
    return rows


def plot(rows, path):
    import matplotlib.pyplot as plt

    names = sorted({r[0] for r in rows})
    fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        for label in dict.fromkeys(r[1] for r in rows if r[0] == name and r[1] != "float"):
            sel = [r for r in rows if r[0] == name and r[1] == label]
            ax.plot([r[2] for r in sel], [r[3] for r in sel], marker="o", label=label)
        ax.axhline(0.9, color="grey", lw=0.5)
        ax.set(xscale="log", xlabel="n_candidates (x 10)", ylabel="recall@10", title=name)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["fortunes", "manpages"])
    parser.add_argument("--bits", nargs="+", type=int, default=[64])
    parser.add_argument("--no-asymmetric", action="store_true")
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    rows = []
    for name in args.data:
        rows += run(name, args.bits, not args.no_asymmetric)
        print("| data | method | m | recall@10 | QPS | RAM B/item | disk B/item |")
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.3f} | {r[4]:,.0f} | {r[5]:.0f} "
                f"| {r[6]:.0f} |"
            )
    for name in args.data:
        default = [
            r
            for r in rows
            if r[0] == name and r[1] == "skhash-64" and r[2] == HashIndex().n_candidates
        ]
        for r in default:
            print(
                f"default kneighbors on {name}: recall@10 {r[3]:.3f} at {r[4]:,.0f} QPS"
                f" (target >= 0.90: {'met' if r[3] >= 0.9 else 'NOT met'})"
            )
    if args.plot:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
