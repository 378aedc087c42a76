"""Two-stage retrieval: recall@10, QPS and bytes/item against the number of candidates.

On the fortunes and man-page embeddings in ``../shared/data`` (2,000 held-out queries,
the rest indexed), the ground truth is the exact top 10 by cosine. Rows, one per
candidate multiplier ``m`` (``n_candidates = m``, so ``10 m`` candidates at k=10):

- ``skhash-B``: default :class:`~skhash.HashIndex` (float16 rescoring), its
  ``BinaryHashEncoder(n_bits=B, random_state=0)`` fitted on the database (cached in the
  temp directory); ``+asym``: asymmetric candidates (the query's pre-activations against the bits);
  ``codes only``: ``rescore=None``, the top 10 by Hamming distance or (``+asym``) by the
  weighted Hamming distance, no vectors stored (also for ``pcaitq-B``, weighted by its
  projections);
- ``sign-384``: the sign of each embedding coordinate (sentence-transformers'
  ``quantize_embeddings(..., "ubinary")``) in the same index, same rescoring;
- ``pcaitq-B``: PCA-ITQ codes in the same index;
- ``faiss-hnsw``: faiss ``IndexBinaryHNSW`` (M=32, efSearch = max(candidates, 16)) over the
  skhash-64 codes + the same compiled float16 rescoring kernel;
- ``float``: exact float32 inner-product search (faiss ``IndexFlatIP``).

RAM bytes/item: codes, int64 ids, graph links and upper layer; disk: what ``save`` writes
(codes, ids, float16 vectors, memory-mapped after ``load``). QPS: one batch of all queries
(encoding included), best of ``--repeat``, after a warm-up. ``--million N``: the fortunes database
tiled to N rows + N(0, ``--noise``^2) per coordinate; ``algorithm="auto"`` and ``"brute"``.

    python benchmarks/retrieval.py [--data fortunes manpages] [--bits 64 128 384] [--plot FILE]
    python benchmarks/retrieval.py --data --million 1000000
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import hashlib
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _embedding_codes import encoder_source_key
from _harness import (
    DATA,
    Disturbance,
    held_bytes,
    machine_line,
    print_command,
    print_header,
    print_row,
)
from sklearn.frozen import FrozenEstimator
from sklearn.preprocessing import FunctionTransformer

from skhash import PCAITQ, BinaryHashEncoder, HashIndex
from skhash._index import _FLOAT16_TO_FLOAT32, _gather_dot_float16

MULTIPLIERS = (1, 2, 5, 10, 20, 30, 50, 100)
K = 10


def sign_bits(X):
    """Bit j is ``x_j > 0`` (sentence-transformers' binary quantisation)."""
    return (np.asarray(X) > 0).astype(np.uint8)


def load(name, n_queries=2000, seed=0):
    X = np.load(DATA / f"{name}_minilm.npz")["X"].astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(X))
    return X[order[n_queries:]], X[order[:n_queries]]


def unit(X):
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def exact_top(database, queries, repeat, k=K):
    """Exact cosine top k (faiss IndexFlatIP on unit rows) and its QPS."""
    import faiss

    index = faiss.IndexFlatIP(database.shape[1])
    index.add(unit(database))
    return timed(lambda q: index.search(unit(q), k)[1], queries, repeat)


def recall(truth, found):
    return float((found[:, :, None] == truth[:, None, :]).any(axis=2).mean())


def timed(fn, queries, repeat):
    fn(queries[:10])  # warm-up: numba code loaded, pages touched
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn(queries)
        best = min(best, time.perf_counter() - start)
    return out, len(queries) / best


def fitted_encoder(name, n_bits, database):
    """``BinaryHashEncoder(n_bits, random_state=0)`` fitted on ``database``, cached.

    The cache (temp directory) is keyed by the data, the encoder's parameters and the
    skhash sources that can change its codes (``_embedding_codes.encoder_source_key``),
    so a change of defaults or of the training code refits.
    """
    encoder = BinaryHashEncoder(n_bits=n_bits, random_state=0)
    settings = repr(encoder.get_params()) + encoder_source_key()
    key = hashlib.sha1(database[:100].tobytes() + settings.encode())
    cache = Path(tempfile.gettempdir()) / f"skhash_retrieval_{name}_{n_bits}_{key.hexdigest()}"
    if cache.exists():
        return BinaryHashEncoder.load(cache)
    encoder.fit(database).save(cache)
    return encoder


def bytes_per_item(index):
    """(RAM, disk) bytes per item: codes + ids (+ graph in RAM, + vectors on disk).

    RAM: every array the Hamming search holds (codes, and for a graph search its
    links, entry points and upper layer; ``_harness.held_bytes``) and the int64 ids.
    """
    base = index.codes_.shape[1] + index.ids_.itemsize
    ram = held_bytes(index._state.searcher) / len(index) + index.ids_.itemsize
    vectors = 0 if index.vectors_ is None else index.vectors_[0].nbytes
    return ram, base + vectors


def index_rows(name, label, index, queries, truth, multipliers, repeat):
    ram, disk = bytes_per_item(index)
    rows = []
    for m in multipliers:
        index.set_params(n_candidates=m)
        with Disturbance() as others:
            found, qps = timed(
                lambda q: index.kneighbors(q, K, return_distance=False), queries, repeat
            )
        rows.append(dict(data=name, method=label, m=m, recall=recall(truth, found), qps=qps,
                         ram=ram, disk=disk, others=others.share))  # fmt: skip
        print_row(*cells(rows[-1]))
    return rows


def codes_only_rows(name, codes_label, encoder, database, queries, truth, repeat):
    """No stored vectors (``rescore=None``): the top 10 by Hamming, then by the
    weighted Hamming distance of ``asymmetric=True``; ``n_candidates`` does not apply."""
    rows = []
    for asymmetric in (False, True):
        label = f"{codes_label} codes only" + ("+asym" if asymmetric else "")
        index = HashIndex(encoder=FrozenEstimator(encoder), rescore=None, asymmetric=asymmetric)
        index.fit(database)
        ram, disk = bytes_per_item(index)
        with Disturbance() as others:
            found, qps = timed(
                lambda q, index=index: index.kneighbors(q, K, return_distance=False),
                queries,
                repeat,
            )
        rows.append(dict(data=name, method=label, m=0, recall=recall(truth, found), qps=qps,
                         ram=ram, disk=disk, others=others.share))  # fmt: skip
        print_row(*cells(rows[-1]))
    return rows


def hnsw_rows(name, index, queries, truth, multipliers, repeat):
    """faiss IndexBinaryHNSW candidates over the same codes, then the same rescoring."""
    import faiss

    hnsw = faiss.IndexBinaryHNSW(index.n_bits_, 32)
    hnsw.add(np.ascontiguousarray(index.codes_))
    vectors = np.asarray(index.vectors_).view(np.uint16)
    links = faiss.serialize_index_binary(hnsw).size - index.codes_.nbytes
    ram = index.codes_.shape[1] + 8 + links / len(vectors)
    rows = []
    for m in multipliers:
        n_cand = m * K
        hnsw.hnsw.efSearch = max(n_cand, 16)

        def search(q, n_cand=n_cand):
            codes = index._encode(q)
            _, cand = hnsw.search(codes, n_cand)
            cand = np.ascontiguousarray(np.where(cand < 0, 0, cand), dtype=np.int64)
            sims = np.empty(cand.shape, dtype=np.float32)
            _gather_dot_float16(vectors, cand, unit(q), _FLOAT16_TO_FLOAT32, sims)
            return np.take_along_axis(cand, np.argsort(-sims, axis=1)[:, :K], 1)

        with Disturbance() as others:
            found, qps = timed(search, queries, repeat)
        rows.append(dict(data=name, method="faiss-hnsw", m=m, recall=recall(truth, found),
                         qps=qps, ram=ram, disk=ram + 768, others=others.share))  # fmt: skip
        print_row(*cells(rows[-1]))
    return rows


HEADER = ("data", "method", "n_candidates", "recall@10", "QPS", "RAM B/item", "disk B/item",
          "others' CPU")  # fmt: skip


def cells(r):
    others = "-" if np.isnan(r["others"]) else f"{r['others']:.0%}"
    return (r["data"], r["method"], r["m"] or "-", f"{r['recall']:.3f}", f"{r['qps']:,.0f}",
            f"{r['ram']:.0f}", f"{r['disk']:.0f}", others)  # fmt: skip


def run(name, args):
    database, queries = load(name)
    print(f"\n{machine_line(extra=('faiss-cpu',))}\n{name}: {len(database):,} items, "
          f"{len(queries):,} held-out queries, k={K}\n")  # fmt: skip
    print_header(*HEADER, left=2)
    truth, float_qps = exact_top(database, queries, args.repeat)
    d = database.shape[1] * 4
    rows = [dict(data=name, method="float", m=0, recall=1.0, qps=float_qps, ram=d, disk=d,
                 others=float("nan"))]  # fmt: skip
    print_row(*cells(rows[-1]))
    mult, rep = args.multipliers, args.repeat
    for n_bits in args.bits:
        encoder = fitted_encoder(name, n_bits, database)
        index = HashIndex(encoder=FrozenEstimator(encoder)).fit(database)
        rows += index_rows(name, f"skhash-{n_bits}", index, queries, truth, mult, rep)
        if args.asymmetric:
            label = f"skhash-{n_bits}"
            index.set_params(asymmetric=True)
            rows += index_rows(name, f"{label}+asym", index, queries, truth, mult, rep)
            index.set_params(asymmetric=False)
            rows += codes_only_rows(name, label, encoder, database, queries, truth, rep)
        if n_bits == 64:
            rows += hnsw_rows(name, index, queries, truth, mult, rep)
    sign = HashIndex(encoder=FunctionTransformer(sign_bits)).fit(database)
    rows += index_rows(name, "sign-384", sign, queries, truth, mult, rep)
    for n_bits in args.itq_bits:
        itq = HashIndex(encoder=PCAITQ(n_bits=n_bits, random_state=0)).fit(database)
        rows += index_rows(name, f"pcaitq-{n_bits}", itq, queries, truth, mult, rep)
        if args.asymmetric:
            itq.set_params(asymmetric=True)
            rows += index_rows(name, f"pcaitq-{n_bits}+asym", itq, queries, truth, mult, rep)
            label = f"pcaitq-{n_bits}"
            rows += codes_only_rows(name, label, itq.encoder_, database, queries, truth, rep)
    print(f"Load average at the end: {os.getloadavg()[0]:.2f}")
    return rows


def tiled(database, n, noise, seed=0):
    """``n`` rows: ``database`` repeated, plus N(0, noise^2) per coordinate."""
    rng = np.random.default_rng(seed)
    X = np.empty((n, database.shape[1]), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        X[start:stop] = database[np.arange(start, stop) % len(database)]
        X[start:stop] += noise * rng.standard_normal((stop - start, X.shape[1]), np.float32)
    return X


def million(args):
    database, queries = load("fortunes")
    queries = queries[: args.million_queries]
    X = tiled(database, args.million, args.noise)
    # fitted on the tiled rows: one fitted on the clean rows maps noisy copies to few codes
    start = time.perf_counter()
    encoder = BinaryHashEncoder(n_bits=64, random_state=0).fit(X)
    print(
        f"BinaryHashEncoder(n_bits=64) fit on the tiled rows: {time.perf_counter() - start:.0f} s"
    )
    name = f"fortunes x{args.million:,}"
    print(f"\n{machine_line(extra=('faiss-cpu',))}")
    print(f"{name}: the {len(database):,} fortunes database rows tiled to {args.million:,} rows"
          f" + N(0, {args.noise}^2) per coordinate, {len(queries)} queries\n")  # fmt: skip
    truth, float_qps = exact_top(X, queries, args.repeat)
    rows = [dict(data=name, method="float", m=0, recall=1.0, qps=float_qps, ram=1536,
                 disk=1536, others=float("nan"))]  # fmt: skip
    print_header(*HEADER, left=2)
    print_row(*cells(rows[-1]))
    for algorithm in ("auto", "brute"):
        start = time.perf_counter()
        index = HashIndex(encoder=FrozenEstimator(encoder), algorithm=algorithm, random_state=0)
        index.fit(X)
        label = f"skhash-64 {algorithm} ({index._state.searcher.fit_method_})"
        print(f"{label}: fit (encode, store vectors, build) {time.perf_counter() - start:.0f} s")
        rows += index_rows(name, label, index, queries, truth, args.million_multipliers, 1)
    print(f"Load average at the end: {os.getloadavg()[0]:.2f}")
    return rows


def summary(rows):
    default = HashIndex().n_candidates
    for r in rows:
        if r["method"].startswith("skhash-64") and r["m"] == default and "+" not in r["method"]:
            met = "met" if r["recall"] >= 0.9 else "NOT met"
            print(f"default kneighbors, {r['data']} ({r['method']}): recall@10 {r['recall']:.3f} "
                  f"at {r['qps']:,.0f} QPS (target >= 0.90: {met})")  # fmt: skip
    for name in dict.fromkeys(r["data"] for r in rows):
        by = {(r["method"], r["m"]): r for r in rows if r["data"] == name}
        pairs = [(m, by[("skhash-384", m)], by[("sign-384", m)]) for m in (1, 2, 5, 10, 20)
                 if ("skhash-384", m) in by and ("sign-384", m) in by]  # fmt: skip
        if pairs:
            text = ", ".join(f"{m}x {a['recall']:.3f}/{b['recall']:.3f}" for m, a, b in pairs)
            ok = all(a["recall"] > b["recall"] for _, a, b in pairs)
            verdict = "met" if ok else "NOT met"
            print(f"{name}, 48 B/item, skhash-384 / sign-384 recall@10: {text} "
                  f"(target skhash > sign at every one: {verdict})")  # fmt: skip


def plot(rows, path):
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["data"] for r in rows))
    fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        for label in dict.fromkeys(r["method"] for r in rows if r["data"] == name and r["m"]):
            sel = [r for r in rows if r["data"] == name and r["method"] == label]
            ax.plot([r["m"] for r in sel], [r["recall"] for r in sel], marker="o", label=label)
        ax.axhline(0.9, color="grey", lw=0.5)
        ax.set(xscale="log", xlabel="n_candidates", ylabel="recall@10", title=name)
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="*", default=["fortunes", "manpages"])
    parser.add_argument("--bits", nargs="*", type=int, default=[64, 128, 384])
    parser.add_argument("--itq-bits", nargs="*", type=int, default=[64])
    parser.add_argument("--multipliers", nargs="+", type=float, default=MULTIPLIERS)
    parser.add_argument("--repeat", type=int, default=2, help="QPS: best of this many batches")
    parser.add_argument("--no-asymmetric", dest="asymmetric", action="store_false")
    parser.add_argument("--million", type=int, default=0, help="items of the tiled row")
    parser.add_argument("--million-queries", type=int, default=300)
    parser.add_argument("--million-multipliers", nargs="+", type=float, default=[10, 20, 50, 100])
    parser.add_argument("--noise", type=float, default=0.01)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    for key in ("multipliers", "million_multipliers"):
        setattr(args, key, [int(m) if float(m).is_integer() else m for m in getattr(args, key)])
    rows = []
    for name in args.data:
        rows += run(name, args)
    if args.million:
        rows += million(args)
    print()
    summary(rows)
    if args.plot:
        plot(rows, args.plot)
    print_command()


if __name__ == "__main__":
    main()
